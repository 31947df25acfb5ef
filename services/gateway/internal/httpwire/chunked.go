package httpwire

import "errors"

// ChunkScanner follows chunked framing (RFC 9112 7.1) over a byte stream that is
// forwarded as it is, and finds where the message ends: the last chunk, the trailer
// section and its final CRLF. The zero value is ready for a new message.
type ChunkScanner struct {
	state   chunkState
	size    uint64 // of the current chunk, then what is left of it
	digits  int
	lineLen int // bytes of the current extension or trailer line
}

type chunkState uint8

const (
	chunkSize     chunkState = iota // hex digits
	chunkSizeWS                     // whitespace after the size
	chunkExt                        // ;extension up to CR
	chunkSizeLF                     // LF after the size line
	chunkData                       // size bytes
	chunkDataCR                     // CR after data
	chunkDataLF                     // LF after data
	trailerStart                    // start of a trailer line, or CR of the final CRLF
	trailerName                     // a trailer field's name
	trailerLine                     // a trailer field's value
	trailerLineLF                   // LF of a trailer line
	finalLF                         // LF of the final CRLF
	chunkDone
)

// The framing errors.
var (
	ErrChunkSize  = errors.New("invalid chunk size")
	ErrChunkCRLF  = errors.New("chunk not followed by CRLF")
	ErrChunkLine  = errors.New("chunk extension or trailer line too long")
	ErrChunkBytes = errors.New("invalid byte in chunk framing")
)

// maxChunkLine bounds a chunk extension and each trailer line.
const maxChunkLine = 4096

// Done reports whether the message has ended.
func (s *ChunkScanner) Done() bool { return s.state == chunkDone }

// Scan consumes b and returns how many of its bytes belong to the message: all of them
// unless the message ended inside b. Once an error is returned the stream is broken.
func (s *ChunkScanner) Scan(b []byte) (int, error) {
	i := 0
	for i < len(b) && s.state != chunkDone {
		c := b[i]
		switch s.state {
		case chunkSize:
			switch v := unhex(c); {
			case v >= 0:
				if s.digits == 15 {
					return i, ErrChunkSize // 16 hex digits would overflow int64 sizes
				}
				s.size = s.size<<4 | uint64(v)
				s.digits++
			case s.digits == 0:
				return i, ErrChunkSize
			case c == ';':
				s.state, s.lineLen = chunkExt, 0
			case c == ' ' || c == '\t':
				s.state = chunkSizeWS
			case c == '\r':
				s.state = chunkSizeLF
			default:
				return i, ErrChunkSize
			}
		case chunkSizeWS: // trailing whitespace of the size line (net/http allows it)
			switch c {
			case ' ', '\t':
			case '\r':
				s.state = chunkSizeLF
			default:
				return i, ErrChunkSize
			}
		case chunkExt:
			switch {
			case c == '\r':
				s.state = chunkSizeLF
			case c == '\n' || c < ' ' && c != '\t' || c == 0x7f:
				return i, ErrChunkBytes
			default:
				if s.lineLen++; s.lineLen > maxChunkLine {
					return i, ErrChunkLine
				}
			}
		case chunkSizeLF:
			if c != '\n' {
				return i, ErrChunkCRLF
			}
			s.digits = 0
			if s.size == 0 {
				s.state = trailerStart
			} else {
				s.state = chunkData
			}
		case chunkData:
			n := uint64(len(b) - i)
			if n > s.size {
				n = s.size
			}
			s.size -= n
			i += int(n)
			if s.size == 0 {
				s.state = chunkDataCR
			}
			continue
		case chunkDataCR:
			if c != '\r' {
				return i, ErrChunkCRLF
			}
			s.state = chunkDataLF
		case chunkDataLF:
			if c != '\n' {
				return i, ErrChunkCRLF
			}
			s.state = chunkSize
		case trailerStart:
			switch {
			case c == '\r':
				s.state = finalLF
			case tchar[c]:
				s.state, s.lineLen = trailerName, 1
			default:
				return i, ErrChunkBytes // bare LF, obs-fold, not a field name
			}
		case trailerName:
			switch {
			case c == ':':
				s.state = trailerLine
			case tchar[c]:
			default:
				return i, ErrChunkBytes
			}
			if s.lineLen++; s.lineLen > maxChunkLine {
				return i, ErrChunkLine
			}
		case trailerLine:
			switch {
			case c == '\r':
				s.state = trailerLineLF
			case c == '\n' || c < ' ' && c != '\t' || c == 0x7f:
				return i, ErrChunkBytes
			default:
				if s.lineLen++; s.lineLen > maxChunkLine {
					return i, ErrChunkLine
				}
			}
		case trailerLineLF:
			if c != '\n' {
				return i, ErrChunkCRLF
			}
			s.state = trailerStart
		case finalLF:
			if c != '\n' {
				return i, ErrChunkCRLF
			}
			s.state = chunkDone
		}
		i++
	}
	return i, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
