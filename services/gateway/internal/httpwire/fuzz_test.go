package httpwire

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzParseRequest: whatever a client sends, the parser does not panic, and a head it
// accepts is one net/http reads the same way (method, target, Host, body length), so
// the fast path and the upstream agree on where each request ends.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.example\r\nX: 1\r\n 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: a.example\r\nConnection: close, x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Request
		if ParseRequest(in, 4096, &r) != OK {
			return
		}
		if r.HeadLen > len(in) || r.ContentLength < 0 { // an empty Host is valid, and gets 421
			t.Fatalf("accepted head with HeadLen %d of %d, length %d", r.HeadLen, len(in), r.ContentLength)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			// net/http is stricter about a few things the upstream sees as they are
			// (e.g. a request-target it cannot parse as a URL); framing must agree.
			return
		}
		if req.Method != string(r.Method) || req.RequestURI != string(r.Target) || req.Host != string(r.Host) {
			t.Fatalf("net/http read %s %s Host %q, the parser %s %s Host %q", req.Method, req.RequestURI, req.Host, r.Method, r.Target, r.Host)
		}
		if req.ContentLength != r.ContentLength && !(req.ContentLength == 0 && r.ContentLength == 0) {
			t.Fatalf("net/http reads a body of %d bytes, the parser %d", req.ContentLength, r.ContentLength)
		}
	})
}

// FuzzChunkScanner: the scanner finds the end of a chunked body where net/http's chunked
// reader does, and accepts nothing net/http refuses.
func FuzzChunkScanner(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\n", "0\r\n\r\nextra", "f\r\n0123456789abcde\r\n0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s ChunkScanner
		n, err := s.Scan(in)
		if err != nil || !s.Done() {
			return
		}
		// Feed the accepted message to net/http as a response body.
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + string(in[:n])
		r, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader([]byte(resp))), nil)
		if rerr != nil {
			t.Fatalf("net/http refused the head: %v", rerr)
		}
		if _, rerr = io.Copy(io.Discard, r.Body); rerr != nil {
			t.Fatalf("scanner accepted %q (%d bytes), net/http: %v", in[:n], n, rerr)
		}
	})
}
