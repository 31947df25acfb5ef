package dnscheck_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/portico-dev/portico/pkg/acmetest"
	"github.com/portico-dev/portico/services/notary/internal/dnscheck"
	"github.com/portico-dev/portico/services/notary/internal/dnstest"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

const target = "k3xq7n2m.acme.portico.example"

// delegationChecker asks the stand-in resolver in front of challtestsrv, which also
// plays every registered domain's authoritative server (on its own port).
func delegationChecker(t *testing.T, resolver *dnstest.Resolver, mod func(*dnscheck.Config)) *dnscheck.Checker {
	t.Helper()
	_, port, _ := net.SplitHostPort(resolver.Addr)
	p, _ := strconv.Atoi(port)
	return newChecker(t, &acmetest.Env{}, func(c *dnscheck.Config) {
		c.Resolvers = []string{resolver.Addr}
		c.AuthoritativePort = p
		if mod != nil {
			mod(c)
		}
	})
}

func TestDelegation(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{})
	resolver := dnstest.Start(t, env.DNSAddr)
	chain := func(t *testing.T, from string, links int, last string) {
		name := from
		for i := 1; i < links; i++ {
			next := fmt.Sprintf("hop%d.chain.example", i)
			env.SetCNAME(t, name, next)
			name = next
		}
		env.SetCNAME(t, name, last)
	}
	tests := []struct {
		name       string
		base       string
		setup      func(t *testing.T)
		want       lifecycle.Verdict
		wantReason string
	}{
		{name: "CNAME to the label", base: "d1.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.d1.example", target)
		}, want: lifecycle.VerdictOK},
		{name: "the target's case and trailing dot do not matter", base: "d2.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.d2.example", "K3XQ7N2M.Acme.Portico.Example.")
		}, want: lifecycle.VerdictOK},
		{name: "no CNAME", base: "d3.example",
			want: lifecycle.VerdictFailed, wantReason: "no CNAME at _acme-challenge.d3.example; publish _acme-challenge.d3.example CNAME " + target},
		{name: "a TXT record instead of the CNAME", base: "d4.example", setup: func(t *testing.T) {
			env.SetTXT(t, "_acme-challenge.d4.example", "manual")
		}, want: lifecycle.VerdictFailed, wantReason: "no CNAME at _acme-challenge.d4.example; publish _acme-challenge.d4.example CNAME " + target},
		{name: "another label of the zone", base: "d5.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.d5.example", "otherlabel.acme.portico.example")
		}, want: lifecycle.VerdictFailed, wantReason: "_acme-challenge.d5.example is a CNAME to otherlabel.acme.portico.example, not to " + target},
		{name: "a CNAME elsewhere", base: "d6.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.d6.example", "d6.acme-dns.example")
		}, want: lifecycle.VerdictFailed, wantReason: "the CNAME chain _acme-challenge.d6.example -> d6.acme-dns.example ends without reaching " + target},
		{name: "a chain of three links", base: "d7.example", setup: func(t *testing.T) {
			chain(t, "_acme-challenge.d7.example", 3, target)
		}, want: lifecycle.VerdictOK},
		{name: "a chain of the longest length followed", base: "d8.example", setup: func(t *testing.T) {
			chain(t, "_acme-challenge.d8.example", dnscheck.MaxCNAMEChain, target)
		}, want: lifecycle.VerdictOK},
		{name: "a chain too long", base: "d9.example", setup: func(t *testing.T) {
			chain(t, "_acme-challenge.d9.example", dnscheck.MaxCNAMEChain+1, target)
		}, want: lifecycle.VerdictFailed, wantReason: fmt.Sprintf("the CNAME chain from _acme-challenge.d9.example is longer than %d links without reaching %s", dnscheck.MaxCNAMEChain, target)},
		{name: "a chain reaching another label", base: "d10.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.d10.example", "mid.d10.example")
			env.SetCNAME(t, "mid.d10.example", "stale.acme.portico.example")
		}, want: lifecycle.VerdictFailed, wantReason: "the CNAME chain _acme-challenge.d10.example -> mid.d10.example -> stale.acme.portico.example reaches another name than " + target},
		{name: "SERVFAIL is indeterminate", base: "d11.example", setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.d11.example", target)
			env.SetServFail(t, "_acme-challenge.d11.example")
		}, want: lifecycle.VerdictIndeterminate},
	}
	c := delegationChecker(t, resolver, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			r := c.Delegation(t.Context(), tc.base, target)
			if r.Verdict != tc.want || (tc.wantReason != "" && r.Reason != tc.wantReason) {
				t.Fatalf("Delegation = %v %q, want %v %q", r.Verdict, r.Reason, tc.want, tc.wantReason)
			}
		})
	}
}

// staleResolver is a recursive resolver that still caches "no such name" for
// everything, as one does after a customer's first look-up before they published the
// record; it knows the registered domains' nameservers (127.0.0.1) like any resolver.
func staleResolver(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if q.Qtype == dns.TypeNS && strings.Count(q.Name, ".") == 2 { // a registered domain
			m.Answer = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns1." + q.Name}}
			m.Extra = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "ns1." + q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)}}
		} else if q.Qtype != dns.TypeNS {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDelegationAsksTheAuthoritativeServers(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{})
	authoritative := dnstest.Start(t, env.DNSAddr)
	env.SetCNAME(t, "_acme-challenge.fresh.example", target)
	stale := staleResolver(t)

	_, port, _ := net.SplitHostPort(authoritative.Addr)
	p, _ := strconv.Atoi(port)
	c := newChecker(t, &acmetest.Env{}, func(c *dnscheck.Config) { c.Resolvers = []string{stale}; c.AuthoritativePort = p })
	if r := c.Delegation(t.Context(), "fresh.example", target); r.Verdict != lifecycle.VerdictOK {
		t.Fatalf("asking the zone's nameservers: %v %q, want OK (the resolver's cache is stale)", r.Verdict, r.Reason)
	}
	resolversOnly := newChecker(t, &acmetest.Env{}, func(c *dnscheck.Config) { c.Resolvers = []string{stale}; c.AskResolversOnly = true })
	if r := resolversOnly.Delegation(t.Context(), "fresh.example", target); r.Verdict != lifecycle.VerdictFailed {
		t.Fatalf("asking the stale resolver only: %v %q, want its stale no", r.Verdict, r.Reason)
	}
}

func TestPreflightAndReverifyWildcard(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{})
	resolver := dnstest.Start(t, env.DNSAddr)
	c := delegationChecker(t, resolver, nil)
	tests := []struct {
		name       string
		w          dnscheck.Wildcard
		setup      func(t *testing.T)
		want       lifecycle.Verdict
		wantReason string
		reverify   string // ReverifyWildcard's reason, when it fails
	}{
		{name: "all in place", w: dnscheck.Wildcard{Base: "w1.example", Apex: true, Target: target}, setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.w1.example", target)
		}, want: lifecycle.VerdictOK},
		{name: "no delegation", w: dnscheck.Wildcard{Base: "w2.example", Target: target},
			want: lifecycle.VerdictFailed, wantReason: "pre-flight (delegation): no CNAME at _acme-challenge.w2.example; publish _acme-challenge.w2.example CNAME " + target,
			reverify: "delegation: no CNAME at _acme-challenge.w2.example; publish _acme-challenge.w2.example CNAME " + target},
		{name: "the wildcard name points elsewhere", w: dnscheck.Wildcard{Base: "w3.example", Target: target}, setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.w3.example", target)
			env.AddA(t, "*.w3.example", "203.0.113.9")
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (points at the edge): *.w3.example resolves to 203.0.113.9, which is not an edge address",
			reverify: "*.w3.example resolves to 203.0.113.9, which is not an edge address"},
		{name: "the apex points elsewhere (apex and wildcard)", w: dnscheck.Wildcard{Base: "w4.example", Apex: true, Target: target}, setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.w4.example", target)
			env.AddA(t, "w4.example", "203.0.113.10")
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (points at the edge): w4.example resolves to 203.0.113.10, which is not an edge address",
			reverify: "w4.example resolves to 203.0.113.10, which is not an edge address"},
		{name: "issuewild names another CA", w: dnscheck.Wildcard{Base: "w5.example", Target: target}, setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.w5.example", target)
			env.AddCAA(t, "w5.example", acmetest.CAA{Tag: "issue", Value: "pebble.example"}, acmetest.CAA{Tag: "issuewild", Value: "other-ca.example"})
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (CAA): CAA at w5.example allows only other-ca.example, not pebble.example"},
		{name: "issue names another CA, issuewild ours: the apex name is refused", w: dnscheck.Wildcard{Base: "w6.example", Target: target}, setup: func(t *testing.T) {
			env.SetCNAME(t, "_acme-challenge.w6.example", target)
			env.AddCAA(t, "w6.example", acmetest.CAA{Tag: "issue", Value: "other-ca.example"}, acmetest.CAA{Tag: "issuewild", Value: "pebble.example"})
		}, want: lifecycle.VerdictFailed, wantReason: "pre-flight (CAA): CAA at w6.example allows only other-ca.example, not pebble.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			r := c.PreflightWildcard(t.Context(), tc.w)
			if r.Verdict != tc.want || r.Reason != tc.wantReason {
				t.Fatalf("PreflightWildcard = %v %q, want %v %q", r.Verdict, r.Reason, tc.want, tc.wantReason)
			}
			rv := c.ReverifyWildcard(t.Context(), tc.w)
			wantRV := lifecycle.VerdictOK
			if tc.reverify != "" {
				wantRV = lifecycle.VerdictFailed
			}
			if rv.Verdict != wantRV || rv.Reason != tc.reverify {
				t.Fatalf("ReverifyWildcard = %v %q, want %v %q", rv.Verdict, rv.Reason, wantRV, tc.reverify)
			}
		})
	}
}
