package dnscheck_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portico-dev/portico/pkg/acmetest"
	"github.com/portico-dev/portico/services/notary/internal/dnscheck"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// deadResolver is a UDP address where nothing answers.
func deadResolver(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String() // bound but never read: queries time out
}

func newChecker(t *testing.T, env *acmetest.Env, mod func(*dnscheck.Config)) *dnscheck.Checker {
	t.Helper()
	cfg := dnscheck.Config{
		Resolvers:     []string{env.DNSAddr},
		Timeout:       300 * time.Millisecond,
		EdgeAddrs:     []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		EdgeCNAME:     "edge.portico.example",
		CAAIdentities: []string{"pebble.example"},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := dnscheck.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOwnership(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{})
	long := strings.Repeat("x", 300) // sent by DNS as two strings of one record
	tests := []struct {
		name       string
		registered string
		setup      func(t *testing.T)
		resolvers  func(t *testing.T) []string
		token      string
		want       lifecycle.Verdict
		wantReason string
	}{
		{name: "token present", registered: "a.example", token: "tok-a", setup: func(t *testing.T) { env.SetTXT(t, "_verify.a.example", "tok-a") }, want: lifecycle.VerdictOK},
		{name: "no TXT record", registered: "b.example", token: "tok-b", want: lifecycle.VerdictFailed, wantReason: "no TXT record at _verify.b.example"},
		{name: "another value", registered: "c.example", token: "tok-c", setup: func(t *testing.T) { env.SetTXT(t, "_verify.c.example", "someone-else") },
			want: lifecycle.VerdictFailed, wantReason: "the TXT record at _verify.c.example does not hold this tenant's verification token"},
		{name: "one of several records", registered: "d.example", token: "tok-d", setup: func(t *testing.T) {
			env.SetTXT(t, "_verify.d.example", "v=spf1 -all")
			env.AddTXT(t, "_verify.d.example", "tok-d")
		}, want: lifecycle.VerdictOK},
		{name: "multi-string record is joined", registered: "e.example", token: long, setup: func(t *testing.T) { env.SetTXT(t, "_verify.e.example", long) }, want: lifecycle.VerdictOK},
		{name: "SERVFAIL is indeterminate", registered: "f.example", token: "tok-f", setup: func(t *testing.T) {
			env.SetTXT(t, "_verify.f.example", "tok-f")
			env.SetServFail(t, "_verify.f.example")
		}, want: lifecycle.VerdictIndeterminate},
		{name: "timeout is indeterminate", registered: "g.example", token: "tok-g",
			resolvers: func(t *testing.T) []string { return []string{deadResolver(t)} }, want: lifecycle.VerdictIndeterminate},
		{name: "the next resolver answers when the first times out", registered: "h.example", token: "tok-h",
			setup:     func(t *testing.T) { env.SetTXT(t, "_verify.h.example", "tok-h") },
			resolvers: func(t *testing.T) []string { return []string{deadResolver(t), env.DNSAddr} }, want: lifecycle.VerdictOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			c := newChecker(t, env, func(cfg *dnscheck.Config) {
				if tc.resolvers != nil {
					cfg.Resolvers = tc.resolvers(t)
				}
			})
			got := c.Ownership(t.Context(), tc.registered, tc.token)
			if got.Verdict != tc.want || (tc.wantReason != "" && got.Reason != tc.wantReason) {
				t.Fatalf("Ownership = %+v, want %v %q", got, tc.want, tc.wantReason)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{})
	tests := []struct {
		name       string
		host       string
		wildcard   bool
		setup      func(t *testing.T)
		mod        func(*dnscheck.Config)
		want       lifecycle.Verdict
		wantReason string
	}{
		{name: "resolves to the edge, no CAA", host: "shop.p1.example", want: lifecycle.VerdictOK},
		{name: "resolves elsewhere", host: "shop.p2.example", setup: func(t *testing.T) { env.AddA(t, "shop.p2.example", "203.0.113.7") },
			want: lifecycle.VerdictFailed, wantReason: "pre-flight (points at the edge): shop.p2.example resolves to 203.0.113.7, which is not an edge address"},
		{name: "one address of two elsewhere", host: "shop.p3.example", setup: func(t *testing.T) { env.AddA(t, "shop.p3.example", "127.0.0.1", "203.0.113.8") },
			want: lifecycle.VerdictFailed, wantReason: "pre-flight (points at the edge): shop.p3.example resolves to 203.0.113.8, which is not an edge address"},
		{name: "an IPv6 address elsewhere", host: "shop.p4.example", setup: func(t *testing.T) { env.AddAAAA(t, "shop.p4.example", "2001:db8::1") },
			want: lifecycle.VerdictFailed, wantReason: "pre-flight (points at the edge): shop.p4.example resolves to 2001:db8::1, which is not an edge address"},
		{name: "CNAME to the edge name", host: "shop.p5.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "shop.p5.example", "edge.portico.example")
			env.AddA(t, "edge.portico.example", "198.51.100.1")
		}, want: lifecycle.VerdictOK},
		{name: "CNAME-only edge without addresses configured", host: "shop.p6.example", mod: func(c *dnscheck.Config) { c.EdgeAddrs = nil },
			want: lifecycle.VerdictFailed, wantReason: "pre-flight (points at the edge): shop.p6.example does not CNAME to edge.portico.example"},
		{name: "SERVFAIL on the address is indeterminate", host: "shop.p7.example", setup: func(t *testing.T) { env.SetServFail(t, "shop.p7.example") },
			want: lifecycle.VerdictIndeterminate},
		{name: "CAA at the parent names another CA", host: "shop.p8.example", setup: func(t *testing.T) {
			env.AddCAA(t, "p8.example", acmetest.CAA{Tag: "issue", Value: "other-ca.example"})
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (CAA): CAA at p8.example allows only other-ca.example, not pebble.example"},
		{name: "CAA names our CA with parameters", host: "shop.p9.example", setup: func(t *testing.T) {
			env.AddCAA(t, "p9.example", acmetest.CAA{Tag: "issue", Value: "other-ca.example"}, acmetest.CAA{Tag: "issue", Value: "Pebble.Example; accounturi=https://x/1"})
		}, want: lifecycle.VerdictOK},
		{name: "the closest CAA set wins", host: "shop.p10.example", setup: func(t *testing.T) {
			env.AddCAA(t, "shop.p10.example", acmetest.CAA{Tag: "issue", Value: "pebble.example"})
			env.AddCAA(t, "p10.example", acmetest.CAA{Tag: "issue", Value: ";"})
		}, want: lifecycle.VerdictOK},
		{name: "an empty issue value forbids every CA", host: "shop.p11.example", setup: func(t *testing.T) {
			env.AddCAA(t, "p11.example", acmetest.CAA{Tag: "issue", Value: ";"})
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (CAA): CAA at p11.example forbids every CA"},
		{name: "iodef alone allows", host: "shop.p12.example", setup: func(t *testing.T) {
			env.AddCAA(t, "p12.example", acmetest.CAA{Tag: "iodef", Value: "mailto:sec@p12.example"})
		}, want: lifecycle.VerdictOK},
		{name: "issuewild applies to a wildcard", host: "*.p13.example", wildcard: true, setup: func(t *testing.T) {
			env.AddCAA(t, "p13.example", acmetest.CAA{Tag: "issue", Value: "pebble.example"}, acmetest.CAA{Tag: "issuewild", Value: "other-ca.example"})
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (CAA): CAA at p13.example allows only other-ca.example, not pebble.example"},
		{name: "SERVFAIL on CAA is indeterminate", host: "shop.p14.example", setup: func(t *testing.T) { env.SetServFail(t, "p14.example") },
			want: lifecycle.VerdictIndeterminate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			c := newChecker(t, env, tc.mod)
			host := tc.host
			got := c.Preflight(t.Context(), host, tc.wildcard)
			if got.Verdict != tc.want || (tc.wantReason != "" && got.Reason != tc.wantReason) {
				t.Fatalf("Preflight = %+v, want %v %q", got, tc.want, tc.wantReason)
			}
		})
	}
}

func TestEvaluateCAACritical(t *testing.T) {
	set := []*dns.CAA{{Flag: 128, Tag: "tbs", Value: "x"}, {Tag: "issue", Value: "pebble.example"}}
	got := dnscheck.EvaluateCAA("example.com", set, false, []string{"pebble.example"})
	if got.Verdict != lifecycle.VerdictFailed || got.Reason != `CAA at example.com has a critical property "tbs" the notary does not understand` {
		t.Fatalf("unknown critical property: %+v", got)
	}
	set[0].Flag = 0
	if got := dnscheck.EvaluateCAA("example.com", set, false, []string{"pebble.example"}); got.Verdict != lifecycle.VerdictOK {
		t.Fatalf("unknown non-critical property: %+v", got)
	}
}
