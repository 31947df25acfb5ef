package handshake_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/handshake"
)

// serve runs a TLS listener with the gateway's server configuration.
func serve(t *testing.T, r *rig, tickets bool) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", handshake.ServerConfig(r.sel, tickets))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("x")) // delivers the TLS 1.3 session ticket
				}
			}()
		}
	}()
	return lis.Addr().String()
}

func TestServerConfig(t *testing.T) {
	r := newRig(t, certcache.Config{}, handshake.Config{})
	r.store.Put("shop.example.com", r.ca.Issue(t, "shop.example.com"))
	addr := serve(t, r, true)
	dial := func(cfg *tls.Config) (tls.ConnectionState, error) {
		cfg.ServerName, cfg.RootCAs = "shop.example.com", r.ca.Pool
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		c.Read(make([]byte, 1))
		return c.ConnectionState(), nil
	}
	tests := []struct {
		name      string
		cfg       *tls.Config
		wantErr   bool
		wantVer   uint16
		wantALPN  string
		wantSuite uint16
	}{
		{name: "TLS 1.3", cfg: &tls.Config{}, wantVer: tls.VersionTLS13},
		{name: "TLS 1.2, ECDHE-ECDSA AES-GCM", cfg: &tls.Config{MaxVersion: tls.VersionTLS12}, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "TLS 1.2, ChaCha20-Poly1305", cfg: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "TLS 1.2 with CBC only is refused", cfg: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, wantErr: true},
		{name: "TLS 1.1 is refused", cfg: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, wantErr: true},
		{name: "ALPN h2", cfg: &tls.Config{NextProtos: []string{"h2", "http/1.1"}}, wantVer: tls.VersionTLS13, wantALPN: "h2"},
		{name: "ALPN http/1.1", cfg: &tls.Config{NextProtos: []string{"http/1.1"}}, wantVer: tls.VersionTLS13, wantALPN: "http/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := dial(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if st.Version != tt.wantVer || st.NegotiatedProtocol != tt.wantALPN || (tt.wantSuite != 0 && st.CipherSuite != tt.wantSuite) {
				t.Errorf("version %x, ALPN %q, suite %s", st.Version, st.NegotiatedProtocol, tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

func TestSessionTickets(t *testing.T) {
	for _, tickets := range []bool{true, false} {
		name := "on"
		if !tickets {
			name = "off"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t, certcache.Config{}, handshake.Config{})
			r.store.Put("shop.example.com", r.ca.Issue(t, "shop.example.com"))
			addr := serve(t, r, tickets)
			cfg := &tls.Config{ServerName: "shop.example.com", RootCAs: r.ca.Pool, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
			var resumed bool
			for range 2 {
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				c.Read(make([]byte, 1)) // reads the ticket, if any
				resumed = c.ConnectionState().DidResume
				c.Close()
			}
			if resumed != tickets {
				t.Fatalf("second connection resumed = %v with session tickets %s", resumed, name)
			}
		})
	}
}
