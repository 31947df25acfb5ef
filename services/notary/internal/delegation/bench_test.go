package delegation_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/memdelegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/redisdelegation"
)

// BenchmarkServerAnswersTXT measures the built-in server answering the CA's question
// (TXT at a label with two answers) over UDP on loopback, with the answers in memory and
// in the real Redis: the cost per query of the server and its one store read.
func BenchmarkServerAnswersTXT(b *testing.B) {
	stores := []struct {
		name string
		new  func(b *testing.B) delegation.Store
	}{
		{"memory", func(*testing.B) delegation.Store { return memdelegation.New() }},
		{"redis", func(b *testing.B) delegation.Store {
			rdb, prefix := redistest.New(b)
			return redisdelegation.New(rdb, prefix)
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			store := st.new(b)
			for _, v := range []string{"wildcard-answer", "apex-answer"} {
				if err := store.Add(context.Background(), "k3xq7n2m", v, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			srv, err := delegation.NewServer(delegation.ServerConfig{Zone: zone, Nameservers: []string{"ns1.portico.test"}}, store, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			l, err := srv.Listen("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			b.Cleanup(func() { cancel(); <-done })
			addr := l.Addr().String()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
				m := question("k3xq7n2m."+zone+".", dns.TypeTXT)
				for pb.Next() {
					resp, _, err := c.Exchange(m, addr)
					if err != nil || len(resp.Answer) != 2 {
						b.Fatalf("answer %v, %v", resp, err)
					}
				}
			})
		})
	}
}
