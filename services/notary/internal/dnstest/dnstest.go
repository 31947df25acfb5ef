// Package dnstest runs a stand-in for a recursive DNS resolver in front of the test DNS
// server (pebble-challtestsrv) and of other authoritative servers, such as the notary's
// built-in server for the delegation zone.
//
// Pebble asks only the one DNS server it is given, and challtestsrv answers only from
// its own records: it follows a CNAME one level within them and never into another
// server. A real resolver would follow `_acme-challenge.example.com CNAME
// <label>.<delegation zone>` to the zone's own servers. Resolver does that for the zones
// it is told about (Delegate): it asks challtestsrv, and when the answer ends in a CNAME
// into a delegated zone, asks that zone's server for the target and returns the whole
// chain. Names inside a delegated zone go to its server directly.
//
// It also plays the authoritative servers of every other zone: an NS question for a
// registered domain (eTLD+1, x/net/publicsuffix) is answered with one nameserver,
// NSName, whose address is the resolver's own, so that code discovering a zone's
// authoritative servers by NS lookups (and asking them on the resolver's port) finds
// this same server; NS and SOA questions elsewhere have no data.
//
// It serves UDP and TCP on one loopback port (Pebble's VA asks over TCP), and records
// every question it forwarded to a delegated zone (DelegatedQueries).
//
//	var resolver *dnstest.Resolver
//	env := acmetest.Start(t, acmetest.Options{FrontDNS: func(t testing.TB, challtestsrv string) string {
//		resolver = dnstest.Start(t, challtestsrv)
//		return resolver.Addr // Pebble asks the stand-in
//	}})
//	resolver.Delegate("acme.portico.test", notaryDNSAddr)
//
// It lives in the notary's module, which already depends on github.com/miekg/dns; the
// shared pkg module does not.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
)

// NSName is the nameserver the resolver names for every registered domain.
const NSName = "ns.dnstest.invalid."

// Query is one question the resolver forwarded to a delegated zone's server.
type Query struct {
	Name  string
	Type  uint16
	Rcode int
	// Answers are the answer records the server returned.
	Answers int
}

// Resolver is a running stand-in resolver.
type Resolver struct {
	// Addr is where it listens (UDP and TCP), host:port.
	Addr string

	upstream string
	udp, tcp *dns.Client

	mu          sync.Mutex
	delegations map[string]string // zone FQDN -> server address
	queries     []Query
}

// Start runs a resolver in front of upstream (host:port, UDP and TCP) for the test, on
// a free loopback port; it stops at the test's cleanup.
func Start(t testing.TB, upstream string) *Resolver {
	t.Helper()
	r := &Resolver{
		upstream:    upstream,
		udp:         &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 4096},
		tcp:         &dns.Client{Net: "tcp", Timeout: 2 * time.Second},
		delegations: map[string]string{},
	}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("dnstest: no free loopback port for UDP and TCP")
	}
	r.Addr = pc.LocalAddr().String()
	servers := []*dns.Server{{PacketConn: pc, Handler: r}, {Listener: ln, Handler: r}}
	var started sync.WaitGroup
	var wg sync.WaitGroup
	for _, s := range servers {
		started.Add(1)
		s.NotifyStartedFunc = started.Done
		wg.Go(func() { _ = s.ActivateAndServe() })
	}
	started.Wait()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.ShutdownContext(ctx)
		}
		wg.Wait()
	})
	return r
}

// Delegate sends questions about zone (and names below it) to the server at addr.
func (r *Resolver) Delegate(zone, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delegations[dns.Fqdn(strings.ToLower(zone))] = addr
}

// DelegatedQueries returns the questions forwarded to delegated zones so far.
func (r *Resolver) DelegatedQueries() []Query {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Query(nil), r.queries...)
}

// delegated returns the server of the delegated zone name lies in.
func (r *Resolver) delegated(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name = strings.ToLower(name)
	for zone, addr := range r.delegations {
		if dns.IsSubDomain(zone, name) {
			return addr, true
		}
	}
	return "", false
}

// ServeDNS implements dns.Handler.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := r.resolve(req)
	m.SetRcode(req, m.Rcode)
	m.Id = req.Id
	m.RecursionAvailable = true
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func (r *Resolver) resolve(req *dns.Msg) *dns.Msg {
	fail := func(rcode int) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		return m
	}
	if len(req.Question) != 1 {
		return fail(dns.RcodeFormatError)
	}
	q := req.Question[0]
	if addr, ok := r.delegated(q.Name); ok {
		m, err := r.ask(addr, q.Name, q.Qtype)
		if err != nil {
			return fail(dns.RcodeServerFailure)
		}
		r.record(q.Name, q.Qtype, m)
		return m
	}
	switch q.Qtype {
	case dns.TypeNS, dns.TypeSOA:
		return r.zoneAnswer(req)
	case dns.TypeA:
		if strings.EqualFold(q.Name, NSName) {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Answer = []dns.RR{r.nsAddress(q.Name)}
			return m
		}
	}
	m, err := r.ask(r.upstream, q.Name, q.Qtype)
	if err != nil {
		return fail(dns.RcodeServerFailure)
	}
	if q.Qtype == dns.TypeCNAME || m.Rcode != dns.RcodeSuccess {
		return m
	}
	// Follow the chain into delegated zones, as a recursive resolver would.
	name := q.Name
	for range 8 {
		target := cnameOf(m.Answer, name)
		if target == "" {
			return m
		}
		addr, ok := r.delegated(target)
		if !ok {
			name = target
			continue
		}
		sub, err := r.ask(addr, target, q.Qtype)
		if err != nil {
			return fail(dns.RcodeServerFailure)
		}
		r.record(target, q.Qtype, sub)
		m.Answer = append(dropOwnedBy(m.Answer, target), sub.Answer...)
		m.Ns = sub.Ns
		m.Rcode = sub.Rcode
		name = target
	}
	return m
}

// zoneAnswer answers NS and SOA for names outside the delegated zones: every registered
// domain is a zone served by NSName; other names have no data.
func (r *Resolver) zoneAnswer(req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
	apex, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil || apex != name {
		return m
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60}
	if q.Qtype == dns.TypeNS {
		hdr.Rrtype = dns.TypeNS
		m.Answer = []dns.RR{&dns.NS{Hdr: hdr, Ns: NSName}}
		m.Extra = []dns.RR{r.nsAddress(NSName)}
		return m
	}
	hdr.Rrtype = dns.TypeSOA
	m.Answer = []dns.RR{&dns.SOA{Hdr: hdr, Ns: NSName, Mbox: "hostmaster." + dns.Fqdn(name), Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 1}}
	return m
}

func (r *Resolver) nsAddress(name string) dns.RR {
	host, _, _ := net.SplitHostPort(r.Addr)
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(host)}
}

func (r *Resolver) ask(addr, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(4096, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m, _, err := r.udp.ExchangeContext(ctx, q, addr)
	if err == nil && m.Truncated {
		m, _, err = r.tcp.ExchangeContext(ctx, q, addr)
	}
	return m, err
}

func (r *Resolver) record(name string, qtype uint16, m *dns.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, Query{Name: strings.ToLower(name), Type: qtype, Rcode: m.Rcode, Answers: len(m.Answer)})
}

// cnameOf returns the target of the CNAME owned by name in rrs, or "".
func cnameOf(rrs []dns.RR, name string) string {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
			return c.Target
		}
	}
	return ""
}

// dropOwnedBy removes the records owned by name (what the upstream made up for a name
// it is not authoritative for).
func dropOwnedBy(rrs []dns.RR, name string) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if !strings.EqualFold(rr.Header().Name, name) || rr.Header().Rrtype == dns.TypeCNAME {
			out = append(out, rr)
		}
	}
	return out
}
