// Package rawtls sends a hand-built TLS 1.2 ClientHello carrying any server_name bytes
// and reads the server's first flight, for tests of what crypto/tls clients never send:
// an IP literal or a trailing dot in SNI, or raw upper case. TLS 1.2 sends the server's
// Certificate message in the clear, so the probe can tell which certificate was chosen
// without completing the handshake.
package rawtls

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Alert descriptions a test may expect.
const (
	AlertDecodeError      = 50
	AlertInternalError    = 80
	AlertUnrecognizedName = 112
)

// Reply is the server's answer to the ClientHello.
type Reply struct {
	// Leaf is the certificate the server chose (nil when it sent an alert).
	Leaf *x509.Certificate
	// Alert is the alert description the server sent instead (0 when none).
	Alert uint8
}

// Probe connects to addr, sends a ClientHello with server_name sni (none when sendSNI is
// false), and returns the chosen leaf or the alert.
func Probe(addr, sni string, sendSNI bool) (Reply, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return Reply{}, err
	}
	if _, err := conn.Write(clientHello(sni, sendSNI)); err != nil {
		return Reply{}, err
	}
	var handshake []byte
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return Reply{}, fmt.Errorf("read record header: %w", err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[3:5]))
		if _, err := io.ReadFull(conn, body); err != nil {
			return Reply{}, fmt.Errorf("read record: %w", err)
		}
		switch hdr[0] {
		case 21: // alert
			if len(body) < 2 {
				return Reply{}, errors.New("short alert")
			}
			return Reply{Alert: body[1]}, nil
		case 22: // handshake
			handshake = append(handshake, body...)
			if leaf, ok, err := certificateIn(handshake); ok || err != nil {
				return Reply{Leaf: leaf}, err
			}
		default:
			return Reply{}, fmt.Errorf("unexpected record type %d", hdr[0])
		}
	}
}

// certificateIn walks complete handshake messages and parses the Certificate message.
func certificateIn(b []byte) (*x509.Certificate, bool, error) {
	for len(b) >= 4 {
		typ := b[0]
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if len(b) < 4+n {
			return nil, false, nil
		}
		msg := b[4 : 4+n]
		b = b[4+n:]
		if typ != 11 { // certificate
			continue
		}
		if len(msg) < 6 {
			return nil, true, errors.New("short certificate message")
		}
		certLen := int(msg[3])<<16 | int(msg[4])<<8 | int(msg[5])
		if len(msg) < 6+certLen {
			return nil, true, errors.New("truncated certificate")
		}
		leaf, err := x509.ParseCertificate(msg[6 : 6+certLen])
		return leaf, true, err
	}
	return nil, false, nil
}

func clientHello(sni string, sendSNI bool) []byte {
	var body bytes.Buffer
	body.Write([]byte{3, 3}) // TLS 1.2
	random := make([]byte, 32)
	rand.Read(random)
	body.Write(random)
	body.WriteByte(0) // no session id
	suites := []uint16{0xc02b, 0xc02f, 0xcca9, 0xcca8}
	put16(&body, uint16(2*len(suites)))
	for _, s := range suites {
		put16(&body, s)
	}
	body.Write([]byte{1, 0}) // null compression

	var ext bytes.Buffer
	if sendSNI {
		var list bytes.Buffer
		list.WriteByte(0) // host_name
		put16(&list, uint16(len(sni)))
		list.WriteString(sni)
		var data bytes.Buffer
		put16(&data, uint16(list.Len()))
		data.Write(list.Bytes())
		extension(&ext, 0, data.Bytes())
	}
	extension(&ext, 10, []byte{0, 4, 0, 0x1d, 0, 0x17})                   // supported_groups: x25519, P-256
	extension(&ext, 11, []byte{1, 0})                                     // ec_point_formats: uncompressed
	extension(&ext, 13, []byte{0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01}) // signature_algorithms
	put16(&body, uint16(ext.Len()))
	body.Write(ext.Bytes())

	var hs bytes.Buffer
	hs.WriteByte(1) // client_hello
	n := body.Len()
	hs.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
	hs.Write(body.Bytes())

	var rec bytes.Buffer
	rec.Write([]byte{22, 3, 1})
	put16(&rec, uint16(hs.Len()))
	rec.Write(hs.Bytes())
	return rec.Bytes()
}

func extension(b *bytes.Buffer, typ uint16, data []byte) {
	put16(b, typ)
	put16(b, uint16(len(data)))
	b.Write(data)
}

func put16(b *bytes.Buffer, v uint16) { b.Write([]byte{byte(v >> 8), byte(v)}) }
