package proxyprotocol_test

import (
	"bufio"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/portico-dev/portico/services/gateway/internal/proxyprotocol"
)

// seen is what the server side of one connection observed.
type seen struct {
	remote string
	line   string
	err    error
}

// serve wraps a loopback listener trusting from, and reports each connection's
// RemoteAddr and first line.
func serve(t *testing.T, from []netip.Prefix) (string, <-chan seen) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := proxyprotocol.Wrap(raw, from, time.Second)
	t.Cleanup(func() { lis.Close() })
	out := make(chan seen, 10)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				out <- seen{remote: c.RemoteAddr().String(), line: strings.TrimSpace(line), err: err}
			}()
		}
	}()
	return raw.Addr().String(), out
}

func header(version byte) []byte {
	h := &proxyproto.Header{
		Version:           version,
		Command:           proxyproto.PROXY,
		TransportProtocol: proxyproto.TCPv4,
		SourceAddr:        &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 51000},
		DestinationAddr:   &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 443},
	}
	b, err := h.Format()
	if err != nil {
		panic(err)
	}
	return b
}

func TestProxyHeaderOnlyFromTrustedAddresses(t *testing.T) {
	addr, got := serve(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	tests := []struct {
		name       string
		from       string // local address to dial from
		header     []byte
		wantRemote string // "" means the dialer's own address
		wantLine   string
		wantErr    bool
	}{
		{name: "trusted, v1", from: "127.0.0.1", header: header(1), wantRemote: "203.0.113.7:51000", wantLine: "hello"},
		{name: "trusted, v2", from: "127.0.0.1", header: header(2), wantRemote: "203.0.113.7:51000", wantLine: "hello"},
		{name: "trusted, no header is refused", from: "127.0.0.1", wantErr: true},
		{name: "untrusted, forged header is data", from: "127.0.0.2", header: header(1), wantLine: "PROXY TCP4 203.0.113.7 198.51.100.1 51000 443"},
		{name: "untrusted, no header", from: "127.0.0.2", wantLine: "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tt.from)}, Timeout: 3 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(append(tt.header, "hello\n"...))
			s := <-got
			if tt.wantErr {
				if s.err == nil {
					t.Fatalf("read %q from a trusted peer without a PROXY header", s.line)
				}
				return
			}
			if s.err != nil {
				t.Fatal(s.err)
			}
			want := tt.wantRemote
			if want == "" {
				want = c.LocalAddr().String()
			}
			if s.remote != want {
				t.Errorf("RemoteAddr = %s, want %s", s.remote, want)
			}
			if s.line != tt.wantLine {
				t.Errorf("first line = %q, want %q", s.line, tt.wantLine)
			}
		})
	}
}

func TestWrapWithoutCIDRsIsANoOp(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if got := proxyprotocol.Wrap(raw, nil, time.Second); got != raw {
		t.Fatalf("Wrap with no CIDRs returned %T, want the listener itself", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: " 10.1.2.3/8 , 192.0.2.4", want: []string{"10.0.0.0/8", "192.0.2.4/32"}},
		{in: "2001:db8::/32,::1", want: []string{"2001:db8::/32", "::1/128"}},
		{in: "::ffff:10.0.0.0/104", want: []string{"10.0.0.0/8"}},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "example.com", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := proxyprotocol.ParsePrefixes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if !slices.Equal(gs, tt.want) {
				t.Errorf("ParsePrefixes(%q) = %v, want %v", tt.in, gs, tt.want)
			}
		})
	}
}
