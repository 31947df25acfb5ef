package delegation_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/memstore"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/memdelegation"
)

const zone = "acme.portico.test"

// startServer runs the built-in server on a free loopback port for the test.
func startServer(t *testing.T, store delegation.Store) string {
	t.Helper()
	srv, err := delegation.NewServer(delegation.ServerConfig{Zone: zone, Nameservers: []string{"ns1.portico.test", "ns2.portico.test"}, TTL: 10 * time.Second}, store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return l.Addr().String()
}

func exchange(t *testing.T, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.ExchangeContext(t.Context(), m, addr)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, m.Question[0].Name, err)
	}
	return resp
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

func txts(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	slices.Sort(out)
	return out
}

func TestServer(t *testing.T) {
	store := memdelegation.New()
	if err := store.Add(t.Context(), "k3xq7n2m", "wildcard-answer", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := store.Add(t.Context(), "k3xq7n2m", "apex-answer", time.Minute); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, store)

	tests := []struct {
		name      string
		msg       *dns.Msg
		rcode     int
		aa        bool
		txt       []string
		answerTyp uint16 // the type of every answer record, when any
		soaInAuth bool
	}{
		{name: "TXT at a label with answers: both values", msg: question("k3xq7n2m."+zone+".", dns.TypeTXT),
			rcode: dns.RcodeSuccess, aa: true, txt: []string{"apex-answer", "wildcard-answer"}, answerTyp: dns.TypeTXT},
		{name: "the question's case is echoed (DNS 0x20)", msg: question("K3xQ7n2M.Acme.Portico.TEST.", dns.TypeTXT),
			rcode: dns.RcodeSuccess, aa: true, txt: []string{"apex-answer", "wildcard-answer"}, answerTyp: dns.TypeTXT},
		{name: "A at a label with answers: no data", msg: question("k3xq7n2m."+zone+".", dns.TypeA),
			rcode: dns.RcodeSuccess, aa: true, soaInAuth: true},
		{name: "a label without answers: NXDOMAIN", msg: question("unknownlabel."+zone+".", dns.TypeTXT),
			rcode: dns.RcodeNameError, aa: true, soaInAuth: true},
		{name: "deeper than one label: NXDOMAIN", msg: question("x.k3xq7n2m."+zone+".", dns.TypeTXT),
			rcode: dns.RcodeNameError, aa: true, soaInAuth: true},
		{name: "SOA at the apex", msg: question(zone+".", dns.TypeSOA),
			rcode: dns.RcodeSuccess, aa: true, answerTyp: dns.TypeSOA},
		{name: "NS at the apex", msg: question(zone+".", dns.TypeNS),
			rcode: dns.RcodeSuccess, aa: true, answerTyp: dns.TypeNS},
		{name: "TXT at the apex: no data", msg: question(zone+".", dns.TypeTXT),
			rcode: dns.RcodeSuccess, aa: true, soaInAuth: true},
		{name: "outside the zone: REFUSED", msg: question("_acme-challenge.example.com.", dns.TypeTXT),
			rcode: dns.RcodeRefused},
		{name: "the parent of the zone: REFUSED", msg: question("portico.test.", dns.TypeNS),
			rcode: dns.RcodeRefused},
		{name: "a zone transfer: REFUSED", msg: question(zone+".", dns.TypeAXFR),
			rcode: dns.RcodeRefused},
		{name: "another opcode: NOTIMP", msg: func() *dns.Msg { m := question(zone+".", dns.TypeSOA); m.Opcode = dns.OpcodeNotify; return m }(),
			rcode: dns.RcodeNotImplemented},
		{name: "another class: REFUSED", msg: func() *dns.Msg { m := question(zone+".", dns.TypeSOA); m.Question[0].Qclass = dns.ClassCHAOS; return m }(),
			rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				resp := exchange(t, addr, network, tc.msg)
				if resp.Rcode != tc.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
				}
				if resp.Authoritative != tc.aa {
					t.Errorf("AA = %v, want %v", resp.Authoritative, tc.aa)
				}
				if resp.RecursionAvailable {
					t.Error("RA set: the server is no resolver")
				}
				if got := txts(resp); !slices.Equal(got, tc.txt) {
					t.Errorf("TXT %q, want %q", got, tc.txt)
				}
				for _, rr := range resp.Answer {
					if rr.Header().Rrtype != tc.answerTyp {
						t.Errorf("answer %v, want only type %s", rr, dns.TypeToString[tc.answerTyp])
					}
					if rr.Header().Name != tc.msg.Question[0].Name {
						t.Errorf("answer owner %q, want the question's %q", rr.Header().Name, tc.msg.Question[0].Name)
					}
					if txt, ok := rr.(*dns.TXT); ok && txt.Hdr.Ttl != 10 {
						t.Errorf("TXT TTL %d, want 10", txt.Hdr.Ttl)
					}
				}
				if tc.answerTyp != 0 && len(resp.Answer) == 0 {
					t.Errorf("no answer, want %s", dns.TypeToString[tc.answerTyp])
				}
				hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA
				if hasSOA != tc.soaInAuth {
					t.Errorf("authority %v, want the SOA: %v", resp.Ns, tc.soaInAuth)
				}
				if hasSOA && resp.Ns[0].(*dns.SOA).Minttl != 10 {
					t.Errorf("SOA minimum %d, want the short TTL 10", resp.Ns[0].(*dns.SOA).Minttl)
				}
			})
		}
	}
}

// failingStore fails every read.
type failingStore struct{ delegation.Store }

func (failingStore) Values(context.Context, string) ([]string, error) {
	return nil, errors.New("store down")
}

func TestServerAnswersSERVFAILWhenTheStoreFails(t *testing.T) {
	addr := startServer(t, failingStore{memdelegation.New()})
	resp := exchange(t, addr, "udp", question("k3xq7n2m."+zone+".", dns.TypeTXT))
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	// The apex needs no store.
	if resp := exchange(t, addr, "udp", question(zone+".", dns.TypeSOA)); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("SOA with the store down: %s", dns.RcodeToString[resp.Rcode])
	}
}

func TestServerTruncatesOverUDP(t *testing.T) {
	store := memdelegation.New()
	for i := range 20 { // 20 answers of 43 octets: more than 512 octets
		if err := store.Add(t.Context(), "many", strings.Repeat(string(rune('a'+i)), 43), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	addr := startServer(t, store)
	udp := exchange(t, addr, "udp", question("many."+zone+".", dns.TypeTXT))
	if !udp.Truncated {
		t.Fatalf("UDP answer without EDNS not truncated (%d records)", len(udp.Answer))
	}
	tcp := exchange(t, addr, "tcp", question("many."+zone+".", dns.TypeTXT))
	if tcp.Truncated || len(txts(tcp)) != 20 {
		t.Fatalf("TCP answer: truncated %v, %d records; want all 20", tcp.Truncated, len(txts(tcp)))
	}
	big := question("many."+zone+".", dns.TypeTXT)
	big.SetEdns0(4096, false)
	if resp := exchange(t, addr, "udp", big); resp.Truncated || len(txts(resp)) != 20 {
		t.Fatalf("UDP answer with EDNS 4096: truncated %v, %d records; want all 20", resp.Truncated, len(txts(resp)))
	}
}

func TestProviderWritesAtTheDomainsLabel(t *testing.T) {
	dstore := memstore.New()
	for _, d := range []domains.Domain{
		{Hostname: "*.example.com", TenantID: "t1", Kind: domains.KindWildcard, DelegationLabel: "wildlabel", RegisteredDomain: "example.com", Status: domains.StatusIssuing},
		{Hostname: "shop.example.net", TenantID: "t1", Kind: domains.KindApexAndWildcard, DelegationLabel: "apexlabel", RegisteredDomain: "example.net", Status: domains.StatusIssuing},
		{Hostname: "plain.example.org", TenantID: "t1", Kind: domains.KindExact, RegisteredDomain: "example.org", Status: domains.StatusIssuing},
	} {
		if _, err := dstore.CreateDomain(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	store := memdelegation.New()
	p := &delegation.Provider{Store: store, Domains: dstore, TTL: time.Minute}
	addr := startServer(t, store)

	tests := []struct {
		name, domain, label string
	}{
		{"WILDCARD domain, lego's base name", "example.com", "wildlabel"},
		{"WILDCARD domain, the wildcard itself", "*.example.com", "wildlabel"},
		{"APEX_AND_WILDCARD domain", "shop.example.net", "apexlabel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Present(t.Context(), tc.domain, "token", "token.wildcard"); err != nil {
				t.Fatal(err)
			}
			if err := p.Present(t.Context(), tc.domain, "token2", "token2.apex"); err != nil {
				t.Fatal(err)
			}
			resp := exchange(t, addr, "udp", question(tc.label+"."+zone+".", dns.TypeTXT))
			want := []string{delegation.TXTValue("token.wildcard"), delegation.TXTValue("token2.apex")}
			slices.Sort(want)
			if got := txts(resp); !slices.Equal(got, want) {
				t.Fatalf("served %q, want both answers %q", got, want)
			}
			for _, ka := range []string{"token.wildcard", "token2.apex"} {
				if err := p.CleanUp(t.Context(), tc.domain, "", ka); err != nil {
					t.Fatal(err)
				}
			}
			if resp := exchange(t, addr, "udp", question(tc.label+"."+zone+".", dns.TypeTXT)); resp.Rcode != dns.RcodeNameError {
				t.Fatalf("after clean-up: %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
			}
		})
	}
	for _, domain := range []string{"plain.example.org", "unknown.example.com"} {
		if err := p.Present(t.Context(), domain, "t", "t.ka"); !errors.Is(err, delegation.ErrNoDelegation) {
			t.Errorf("Present(%s) = %v, want ErrNoDelegation", domain, err)
		}
	}
}

func TestTXTValue(t *testing.T) {
	// RFC 8555 section 8.4: base64url(SHA-256(key authorization)), unpadded: the value
	// lego's own dns01.GetChallengeInfo computes (its CNAME lookups off, so it asks no DNS).
	t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true")
	for _, ka := range []string{"token.thumbprint", "x", "DGyRejmCefe7v4NfDGDKfA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"} {
		if got, want := delegation.TXTValue(ka), dns01.GetChallengeInfo(t.Context(), "example.com", ka).Value; got != want {
			t.Errorf("TXTValue(%q) = %s, lego computes %s", ka, got, want)
		}
	}
}
