package httpwire

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name    string
		in      string
		want    Verdict
		wantErr error
		check   func(t *testing.T, r *Request)
	}{
		{name: "GET", in: "GET /a?b=c HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: x\r\n\r\n", want: OK,
			check: func(t *testing.T, r *Request) {
				if string(r.Method) != "GET" || string(r.Target) != "/a?b=c" || string(r.Host) != "shop.example.com" ||
					len(r.Fields) != 2 || r.ContentLength != 0 || r.Close {
					t.Errorf("parsed %+v", r)
				}
			}},
		{name: "leading empty lines are skipped", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n", want: OK},
		{name: "POST with a body", in: "POST /f HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello", want: OK,
			check: func(t *testing.T, r *Request) {
				if r.ContentLength != 5 || r.HeadLen != len("POST /f HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\n") {
					t.Errorf("length %d, head %d", r.ContentLength, r.HeadLen)
				}
			}},
		{name: "repeated equal Content-Length", in: "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", want: OK},
		{name: "Connection tokens", in: "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close, X-Private\r\nTE: trailers\r\n\r\n", want: OK,
			check: func(t *testing.T, r *Request) {
				if !r.Close || len(r.ConnectionTokens) != 1 || string(r.ConnectionTokens[0]) != "X-Private" || !r.TETrailers {
					t.Errorf("close %v tokens %q trailers %v", r.Close, r.ConnectionTokens, r.TETrailers)
				}
			}},
		{name: "field value whitespace trimmed", in: "GET / HTTP/1.1\r\nHost:\t a.example \t\r\n\r\n", want: OK,
			check: func(t *testing.T, r *Request) {
				if string(r.Host) != "a.example" {
					t.Errorf("Host %q", r.Host)
				}
			}},

		{name: "incomplete", in: "GET / HTTP/1.1\r\nHost: a.example\r\n", want: Incomplete},
		{name: "too large", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", limit) + "\r\n\r\n", want: TooLarge},
		{name: "too large before its end arrives", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", limit), want: TooLarge},

		// RFC 9112 request smuggling rules: refused with 400.
		{name: "Content-Length and Transfer-Encoding", in: "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", want: Bad, wantErr: ErrLengthAndChunked},
		{name: "Transfer-Encoding and Content-Length", in: "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", want: Bad, wantErr: ErrLengthAndChunked},
		{name: "conflicting Content-Lengths", in: "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", want: Bad, wantErr: ErrConflictLength},
		{name: "Content-Length list", in: "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5, 5\r\n\r\n", want: Bad, wantErr: ErrBadLength},
		{name: "signed Content-Length", in: "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: +5\r\n\r\n", want: Bad, wantErr: ErrBadLength},
		{name: "huge Content-Length", in: "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 9999999999999999999\r\n\r\n", want: Bad, wantErr: ErrBadLength},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\n  continued\r\n\r\n", want: Bad, wantErr: ErrObsFold},
		{name: "whitespace before the colon", in: "GET / HTTP/1.1\r\nHost : a.example\r\n\r\n", want: Bad, wantErr: ErrBadField},
		{name: "bare CR in a field", in: "GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r2\r\n\r\n", want: Bad, wantErr: ErrBareCR},
		{name: "NUL in a value", in: "GET / HTTP/1.1\r\nHost: a.example\r\nX-A: 1\x002\r\n\r\n", want: Bad, wantErr: ErrBadField},
		{name: "transfer coding other than chunked", in: "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\n\r\n", want: Bad, wantErr: ErrBadEncoding},
		{name: "chunked not last", in: "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", want: Bad, wantErr: ErrBadEncoding},
		{name: "no Host", in: "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", want: Bad, wantErr: ErrNoHost},
		{name: "two Hosts", in: "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", want: Bad, wantErr: ErrNoHost},
		{name: "invalid Host", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", want: Bad, wantErr: ErrNoHost},
		{name: "space in the target", in: "GET /a b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: Bad, wantErr: ErrBadRequestLine},
		{name: "control character in the target", in: "GET /a\x01b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: Bad, wantErr: ErrBadRequestLine},
		{name: "method not a token", in: "G(T / HTTP/1.1\r\nHost: a.example\r\n\r\n", want: Bad, wantErr: ErrBadRequestLine},

		// Valid, but for net/http to serve.
		{name: "chunked request body", in: "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n", want: Unusual},
		{name: "WebSocket upgrade", in: "GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", want: Unusual},
		{name: "Expect: 100-continue", in: "PUT / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", want: Unusual},
		{name: "HTTP/1.0", in: "GET / HTTP/1.0\r\nHost: a.example\r\n\r\n", want: Unusual},
		{name: "absolute-form", in: "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", want: Unusual},
		{name: "asterisk-form", in: "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", want: Unusual},
		{name: "CONNECT", in: "CONNECT /x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: Unusual},
		{name: "bare LF line endings", in: "GET / HTTP/1.1\nHost: a.example\n\n", want: Unusual},
		{name: "a bare LF among CRLFs", in: "GET / HTTP/1.1\r\nHost: a.example\nX: 1\r\n\r\n", want: Unusual},
		{name: "too many fields", in: "GET / HTTP/1.1\r\nHost: a.example\r\n" + strings.Repeat("X: 1\r\n", maxFields) + "\r\n", want: Unusual},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			lim := limit
			if tt.name == "too many fields" {
				lim = 4096
			}
			got := ParseRequest([]byte(tt.in), lim, &r)
			if got != tt.want {
				t.Fatalf("verdict %d (%v), want %d", got, r.Err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(r.Err, tt.wantErr) {
				t.Errorf("error %v, want %v", r.Err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, &r)
			}
		})
	}
}

// TestParseRequestReusesItsSlices: a Request reused across a connection's requests
// allocates nothing once its slices have grown.
func TestParseRequestReusesItsSlices(t *testing.T) {
	in := []byte("GET /a HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: x\r\nAccept: */*\r\nConnection: keep-alive, X-A\r\n\r\n")
	var r Request
	ParseRequest(in, 4096, &r)
	if n := testing.AllocsPerRun(100, func() { ParseRequest(in, 4096, &r) }); n != 0 {
		t.Errorf("%v allocations per parse, want 0", n)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	in := []byte("GET /products/42?ref=home HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0\r\n" +
		"Accept: text/html\r\nAccept-Encoding: gzip, br\r\nAccept-Language: en\r\nCookie: session=abcdef\r\n\r\n")
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if ParseRequest(in, 64<<10, &r) != OK {
			b.Fatal("not OK")
		}
	}
}
