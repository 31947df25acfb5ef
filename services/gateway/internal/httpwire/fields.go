package httpwire

import (
	"bytes"
	"iter"
)

// tchar is RFC 9110's token alphabet.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// validValue refuses control characters other than HTAB in a field value (obs-text,
// 0x80 and up, is allowed).
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold reports whether b is lower (given in lower case), ignoring ASCII case.
func EqualFold(b []byte, lower string) bool { return equalFold(b, lower) }

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// tokens yields the non-empty comma-separated elements of a list field, trimmed.
func tokens(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			if tok = trimOWS(tok); len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

func hasToken(v []byte, lower string) bool {
	for tok := range tokens(v) {
		if equalFold(tok, lower) {
			return true
		}
	}
	return false
}

// lastTokenIsChunked: chunked must be the final transfer coding (RFC 9112 6.3).
func lastTokenIsChunked(v []byte) bool {
	var last []byte
	for tok := range tokens(v) {
		last = tok
	}
	return equalFold(last, "chunked")
}

// parseLength parses a Content-Length value: digits only, at most 18 of them. A list of
// equal values ("5, 5"), which RFC 9110 allows a recipient to accept, is refused: no
// client sends one.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
