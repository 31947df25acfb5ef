// Package httpwire parses HTTP/1.1 message heads and chunked framing in place, without
// allocating, for the gateway's keep-alive fast path (internal/proxy). It is strict on
// purpose: a head it cannot vouch for is either refused (the RFC 9112 request smuggling
// rules: Content-Length with Transfer-Encoding, conflicting or malformed lengths,
// obs-fold, bare CR, whitespace before a colon, bad chunk framing) or reported as
// Unusual, so the caller hands the connection to net/http, which serves every corner of
// the protocol (HTTP/1.0, absolute-form targets, Expect, Upgrade, chunked request
// bodies, bare-LF line endings).
//
// Every slice in a parsed head points into the caller's buffer and is valid until the
// buffer is reused.
package httpwire

import (
	"bytes"
	"errors"

	"golang.org/x/net/http/httpguts"
)

// Verdict is what a request head parse concluded.
type Verdict int

// The verdicts of ParseRequest.
const (
	// OK: the head is complete and served by the fast path.
	OK Verdict = iota
	// Incomplete: no end of head yet; read more (unless the head limit is reached).
	Incomplete
	// Unusual: valid HTTP perhaps, but not the fast path's to serve; hand the bytes
	// read so far to net/http.
	Unusual
	// Bad: the request must be refused with 400 and the connection closed (Err says why).
	Bad
	// TooLarge: the head exceeds the limit: 431 and close.
	TooLarge
)

// Field is one header line, name and value without surrounding whitespace.
type Field struct {
	Name, Value []byte
}

// maxFields bounds the header lines of a fast-path head; more go to net/http.
const maxFields = 100

// Request is a parsed request head. Reuse one per connection: Fields keeps its capacity.
type Request struct {
	Method, Target []byte
	// Host is the single Host field's value.
	Host []byte
	// Fields are the header lines in order, Host included.
	Fields []Field
	// ContentLength is the body length (0 when there is no body).
	ContentLength int64
	// Close: the client sent Connection: close.
	Close bool
	// ConnectionTokens are the other tokens of Connection: names of hop-by-hop fields.
	ConnectionTokens [][]byte
	// TETrailers: the client sent TE: trailers.
	TETrailers bool
	// HeadLen is the length of the head in the buffer, final CRLF included.
	HeadLen int
	// Err says why a head was Bad.
	Err error
}

// The reasons a head is Bad.
var (
	ErrBadRequestLine   = errors.New("malformed request line")
	ErrBadField         = errors.New("malformed header field")
	ErrObsFold          = errors.New("obsolete line folding")
	ErrBareCR           = errors.New("bare CR")
	ErrLengthAndChunked = errors.New("both Content-Length and Transfer-Encoding")
	ErrBadLength        = errors.New("invalid Content-Length")
	ErrConflictLength   = errors.New("conflicting Content-Length values")
	ErrBadEncoding      = errors.New("unsupported Transfer-Encoding")
	ErrNoHost           = errors.New("missing, repeated or invalid Host")
)

var crlfcrlf = []byte("\r\n\r\n")

// ParseRequest parses the request head at the start of b (empty lines before it are
// skipped, as RFC 9112 allows). limit bounds the head's length. r is reset first.
func ParseRequest(b []byte, limit int, r *Request) Verdict {
	r.reset()
	start := 0
	for len(b)-start >= 2 && b[start] == '\r' && b[start+1] == '\n' {
		start += 2
	}
	end := bytes.Index(b[start:], crlfcrlf)
	if end < 0 {
		switch {
		case hasBareLF(b[start:]):
			return Unusual // bare-LF line endings: net/http accepts them
		case len(b)-start > limit:
			return TooLarge
		}
		return Incomplete
	}
	if end+4 > limit {
		return TooLarge
	}
	head := b[start : start+end+2] // every line with its CRLF
	r.HeadLen = start + end + 4
	if hasBareLF(head) {
		return Unusual
	}

	line, rest, err := nextLine(head)
	if err != nil {
		return r.bad(err)
	}
	if v := r.requestLine(line); v != OK {
		return v
	}
	var hosts, lengths int
	var chunked, te bool
	for len(rest) > 0 {
		line, rest, err = nextLine(rest)
		if err != nil {
			return r.bad(err)
		}
		if line[0] == ' ' || line[0] == '\t' {
			return r.bad(ErrObsFold)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return r.bad(ErrBadField)
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validValue(value) {
			return r.bad(ErrBadField)
		}
		if len(r.Fields) == maxFields {
			return Unusual
		}
		r.Fields = append(r.Fields, Field{Name: name, Value: value})
		switch {
		case equalFold(name, "host"):
			hosts++
			r.Host = value
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok {
				return r.bad(ErrBadLength)
			}
			if lengths > 0 && n != r.ContentLength {
				return r.bad(ErrConflictLength)
			}
			lengths++
			r.ContentLength = n
		case equalFold(name, "transfer-encoding"):
			te = true
			chunked = chunked || lastTokenIsChunked(value)
		case equalFold(name, "connection"):
			if v := r.connection(value); v != OK {
				return v
			}
		case equalFold(name, "upgrade"), equalFold(name, "expect"):
			return Unusual // WebSockets and 100-continue: net/http's job
		case equalFold(name, "te"):
			r.TETrailers = r.TETrailers || hasToken(value, "trailers")
		}
	}
	switch {
	case te && lengths > 0:
		return r.bad(ErrLengthAndChunked)
	case te && !chunked:
		return r.bad(ErrBadEncoding)
	case hosts != 1 || !httpguts.ValidHostHeader(string(r.Host)):
		return r.bad(ErrNoHost)
	case te:
		return Unusual // chunked request bodies stream through net/http
	}
	return OK
}

func (r *Request) reset() {
	*r = Request{Fields: r.Fields[:0], ConnectionTokens: r.ConnectionTokens[:0]}
}

func (r *Request) bad(err error) Verdict {
	r.Err = err
	return Bad
}

// requestLine takes "METHOD SP origin-form SP HTTP/1.1".
func (r *Request) requestLine(line []byte) Verdict {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return r.bad(ErrBadRequestLine)
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1+1 {
		return r.bad(ErrBadRequestLine)
	}
	r.Method, r.Target = line[:sp1], line[sp1+1:sp2]
	proto := line[sp2+1:]
	if !isToken(r.Method) {
		return r.bad(ErrBadRequestLine)
	}
	for _, c := range r.Target {
		if c <= ' ' || c == 0x7f {
			return r.bad(ErrBadRequestLine)
		}
	}
	if string(proto) != "HTTP/1.1" {
		return Unusual // HTTP/1.0 (no chunked responses, other keep-alive rules) or garbage
	}
	if r.Target[0] != '/' || string(r.Method) == "CONNECT" {
		return Unusual // absolute-form, authority-form, asterisk-form
	}
	return OK
}

// connection records the tokens of a Connection field.
func (r *Request) connection(v []byte) Verdict {
	for tok := range tokens(v) {
		switch {
		case equalFold(tok, "close"):
			r.Close = true
		case equalFold(tok, "keep-alive"):
		case equalFold(tok, "upgrade"):
			return Unusual
		default:
			if len(r.ConnectionTokens) == 16 {
				return Unusual
			}
			r.ConnectionTokens = append(r.ConnectionTokens, tok)
		}
	}
	return OK
}

// nextLine splits off the first line of b (every LF in b follows a CR), refusing a bare
// CR in it.
func nextLine(b []byte) (line, rest []byte, err error) {
	i := bytes.IndexByte(b, '\n')
	line, rest = b[:i-1], b[i+1:]
	if len(line) == 0 {
		return nil, nil, ErrBadField
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, ErrBareCR
	}
	return line, rest, nil
}

func hasBareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}
