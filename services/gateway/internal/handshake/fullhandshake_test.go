package handshake_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// BenchmarkServerHandshake runs full TLS 1.3 handshakes (client and server, in memory)
// with the certificate as the cache holds it (Leaf nil) and with Leaf set. Equal
// allocations show that crypto/tls's server never parses the leaf, so caching the parsed
// leaf (about 2 KB each) would buy nothing per handshake.
func BenchmarkServerHandshake(b *testing.B) {
	ca := testpki.NewCA(b)
	l := ca.Issue(b, "shop.example.com")
	cached, leaf, err := certcache.ParseCertificate(l.Chain, l.Key)
	if err != nil {
		b.Fatal(err)
	}
	withLeaf := *cached
	withLeaf.Leaf = leaf
	for _, bc := range []struct {
		name string
		cert *tls.Certificate
	}{{"leaf-nil", cached}, {"leaf-set", &withLeaf}} {
		b.Run(bc.name, func(b *testing.B) {
			server := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return bc.cert, nil }, SessionTicketsDisabled: true}
			client := &tls.Config{ServerName: "shop.example.com", RootCAs: ca.Pool}
			b.ReportAllocs()
			for b.Loop() {
				c, s := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tls.Server(s, server).Handshake() }()
				if err := tls.Client(c, client).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c.Close()
				s.Close()
			}
		})
	}
}
