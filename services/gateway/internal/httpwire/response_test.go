package httpwire

import (
	"errors"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		wantErr      error
		incomplete   bool
		status       int
		length       int64
		chunked      bool
		close        bool
		hasDate      bool
		noBodyForGET bool
	}{
		{name: "200 with length", in: "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nDate: x\r\n\r\n", status: 200, length: 20, hasDate: true},
		{name: "no reason phrase", in: "HTTP/1.1 204\r\n\r\n", status: 204, length: -1, noBodyForGET: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, length: -1, chunked: true},
		{name: "chunked and length: chunked, not reused", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, length: -1, chunked: true, close: true},
		{name: "delimited by close", in: "HTTP/1.1 200 OK\r\n\r\n", status: 200, length: -1, close: true},
		{name: "Connection: close", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status: 200, length: 0, close: true},
		{name: "HTTP/1.0 without keep-alive", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, length: 0, close: true},
		{name: "HTTP/1.0 with keep-alive", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", status: 200, length: 0},
		{name: "304", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304, length: 10, noBodyForGET: true},
		{name: "103 Early Hints", in: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", status: 103, length: -1, noBodyForGET: true},
		{name: "incomplete", in: "HTTP/1.1 200 OK\r\n", incomplete: true},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", wantErr: ErrConflictLength},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: ErrBadLength},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n", wantErr: ErrObsFold},
		{name: "bad status line", in: "HTTP/2 200 OK\r\n\r\n", wantErr: ErrBadStatusLine},
		{name: "status not digits", in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: ErrBadStatusLine},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", wantErr: ErrBadField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			ok, err := ParseResponse([]byte(tt.in), 4096, &r)
			if tt.wantErr != nil || err != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if ok == tt.incomplete {
				t.Fatalf("complete = %v", ok)
			}
			if !ok {
				return
			}
			if r.Status != tt.status || r.ContentLength != tt.length || r.Chunked != tt.chunked || r.Close != tt.close ||
				r.HasDate != tt.hasDate || r.NoBody(false) != tt.noBodyForGET {
				t.Errorf("got status %d length %d chunked %v close %v date %v nobody %v", r.Status, r.ContentLength,
					r.Chunked, r.Close, r.HasDate, r.NoBody(false))
			}
		})
	}
}
