package httpwire

import (
	"errors"
	"testing"
)

func TestChunkScanner(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantLen int // bytes of the message (-1: all of in, not done)
		wantErr error
	}{
		{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", wantLen: 15},
		{name: "message ends before the next one", in: "5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", wantLen: 15},
		{name: "upper-case hex and extensions", in: "A;ext=1\r\n0123456789\r\n0;last\r\n\r\n", wantLen: 31},
		{name: "whitespace after the size", in: "1 \t\r\na\r\n0\r\n\r\n", wantLen: 13},
		{name: "trailers", in: "1\r\na\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", wantLen: 33},
		{name: "not finished", in: "5\r\nhel", wantLen: -1},
		{name: "no size", in: "\r\nhello\r\n", wantErr: ErrChunkSize},
		{name: "size not hex", in: "5g\r\nhello\r\n", wantErr: ErrChunkSize},
		{name: "negative size", in: "-5\r\nhello\r\n", wantErr: ErrChunkSize},
		{name: "size overflowing", in: "1000000000000000\r\n", wantErr: ErrChunkSize},
		{name: "junk after the size", in: "5 x\r\nhello\r\n", wantErr: ErrChunkSize},
		{name: "bare LF after the size", in: "5\nhello\r\n", wantErr: ErrChunkSize},
		{name: "data longer than its size", in: "5\r\nhello!\r\n", wantErr: ErrChunkCRLF},
		{name: "no CRLF after data", in: "5\r\nhelloX", wantErr: ErrChunkCRLF},
		{name: "bare LF in an extension", in: "5;a\nb\r\nhello\r\n", wantErr: ErrChunkBytes},
		{name: "obs-fold in trailers", in: "0\r\nX: 1\r\n 2\r\n\r\n", wantErr: ErrChunkBytes},
		{name: "bare LF ends the trailers", in: "0\r\n\n", wantErr: ErrChunkBytes},
		{name: "trailer line without a colon", in: "0\r\nabc\r\n\r\n", wantErr: ErrChunkBytes},
		{name: "space before a trailer's colon", in: "0\r\nX : 1\r\n\r\n", wantErr: ErrChunkBytes},
		{name: "extension after whitespace", in: "5 ;a\r\nhello\r\n", wantErr: ErrChunkSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, step := range []int{len(tt.in), 1, 3} { // whole, byte by byte, in threes
				var s ChunkScanner
				total, err := 0, error(nil)
				for i := 0; i < len(tt.in) && err == nil && !s.Done(); i += step {
					var n int
					n, err = s.Scan([]byte(tt.in[i:min(i+step, len(tt.in))]))
					total += n
				}
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("step %d: error %v, want %v", step, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if tt.wantLen < 0 {
					if s.Done() || total != len(tt.in) {
						t.Fatalf("step %d: done %v after %d bytes, want not done after all %d", step, s.Done(), total, len(tt.in))
					}
					continue
				}
				if !s.Done() || total != tt.wantLen {
					t.Fatalf("step %d: done %v after %d bytes, want done after %d", step, s.Done(), total, tt.wantLen)
				}
			}
		})
	}
}

func TestChunkScannerExtensionLimit(t *testing.T) {
	in := make([]byte, maxChunkLine+10)
	copy(in, "5;")
	for i := 2; i < len(in); i++ {
		in[i] = 'a'
	}
	var s ChunkScanner
	if _, err := s.Scan(in); !errors.Is(err, ErrChunkLine) {
		t.Fatalf("error %v, want %v", err, ErrChunkLine)
	}
}
