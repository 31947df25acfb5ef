package httpwire

import (
	"bytes"
	"errors"
)

// Response is a parsed upstream response head. Reuse one per connection.
type Response struct {
	// Status is the status code; Reason the reason phrase (may be empty).
	Status int
	Reason []byte
	// Minor is the HTTP/1.x minor version.
	Minor int
	// Fields are the header lines in order.
	Fields []Field
	// ContentLength is the body length, -1 when the body is chunked or ends at close.
	ContentLength int64
	// Chunked: the body is chunked (the final transfer coding).
	Chunked bool
	// HasLength: a Content-Length field was present.
	HasLength bool
	// Close: the upstream will not reuse the connection (Connection: close, HTTP/1.0
	// without keep-alive, or ambiguous framing).
	Close bool
	// HasDate: a Date field was present.
	HasDate bool
	// ConnectionTokens name further hop-by-hop fields.
	ConnectionTokens [][]byte
	// HeadLen is the head's length, final CRLF included.
	HeadLen int
}

// The reasons an upstream response is refused (the client gets 502).
var (
	ErrBadStatusLine = errors.New("malformed status line")
	ErrHeadTooLarge  = errors.New("response head too large")
)

// ParseResponse parses the response head at the start of b. It returns ok=false with a
// nil error when the head is not complete yet, and an error for a head the gateway will
// not forward. limit bounds the head's length.
func ParseResponse(b []byte, limit int, r *Response) (ok bool, err error) {
	*r = Response{Fields: r.Fields[:0], ConnectionTokens: r.ConnectionTokens[:0], ContentLength: -1}
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if len(b) > limit {
			return false, ErrHeadTooLarge
		}
		return false, nil
	}
	if end+4 > limit {
		return false, ErrHeadTooLarge
	}
	head := b[:end+2]
	r.HeadLen = end + 4
	if hasBareLF(head) {
		return false, ErrBadField
	}
	line, rest, err := nextLine(head)
	if err != nil {
		return false, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return false, ErrBadStatusLine
	}
	r.Minor = int(line[7] - '0')
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false, ErrBadStatusLine
		}
		r.Status = r.Status*10 + int(c-'0')
	}
	if r.Status < 100 {
		return false, ErrBadStatusLine
	}
	if len(line) > 13 {
		r.Reason = line[13:]
	}
	keepAlive := false
	lengths := 0
	for len(rest) > 0 {
		line, rest, err = nextLine(rest)
		if err != nil {
			return false, err
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false, ErrObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return false, ErrBadField
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validValue(value) {
			return false, ErrBadField
		}
		if len(r.Fields) == 4*maxFields {
			return false, ErrHeadTooLarge
		}
		r.Fields = append(r.Fields, Field{Name: name, Value: value})
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok {
				return false, ErrBadLength
			}
			if lengths > 0 && n != r.ContentLength {
				return false, ErrConflictLength
			}
			lengths++
			r.ContentLength, r.HasLength = n, true
		case equalFold(name, "transfer-encoding"):
			if !lastTokenIsChunked(value) {
				// Any other final coding is delimited by the close (RFC 9112 6.3).
				r.Chunked = false
				r.Close = true
				continue
			}
			r.Chunked = true
		case equalFold(name, "connection"):
			for tok := range tokens(value) {
				switch {
				case equalFold(tok, "close"):
					r.Close = true
				case equalFold(tok, "keep-alive"):
					keepAlive = true
				default:
					if len(r.ConnectionTokens) < 16 {
						r.ConnectionTokens = append(r.ConnectionTokens, tok)
					} else {
						return false, ErrBadField
					}
				}
			}
		case equalFold(name, "date"):
			r.HasDate = true
		}
	}
	if r.Minor == 0 && !keepAlive {
		r.Close = true
	}
	if r.Chunked || r.Close && !r.HasLength {
		if r.HasLength {
			// Transfer-Encoding overrides Content-Length; such a response may be an
			// attempt at smuggling, so the connection is not reused (RFC 9112 6.3).
			r.Close = true
		}
		r.ContentLength = -1
	}
	if !r.Chunked && !r.HasLength && !r.NoBody(false) {
		r.Close = true // delimited by the close
	}
	return true, nil
}

// NoBody reports whether a response to a request with the given method has no body
// whatever its fields say (RFC 9112 6.3: HEAD, 1xx, 204, 304).
func (r *Response) NoBody(head bool) bool {
	return head || r.Status < 200 || r.Status == 204 || r.Status == 304
}
