package delegation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// ServerConfig describes the delegation zone the built-in server is authoritative for.
type ServerConfig struct {
	// Zone is the delegation zone, lowercase, without a trailing dot.
	Zone string
	// Nameservers are the zone's NS names (outside the zone, as the parent delegates to
	// them); the first is the SOA's primary.
	Nameservers []string
	// TTL is the TTL of TXT answers and of negative answers (the SOA minimum); short, so
	// that a resolver never holds an old challenge answer or an NXDOMAIN for long.
	// Default 10 s.
	TTL time.Duration
	// StoreTimeout bounds one read of the Store per query (default 2 s): a resolver
	// retries rather than wait longer.
	StoreTimeout time.Duration
}

// Server is the built-in authoritative DNS server of the delegation zone, a
// github.com/miekg/dns handler:
//
//   - a name outside the zone: REFUSED (it is no resolver);
//   - the zone apex: SOA and NS; any other type there has no data (NOERROR, SOA in the
//     authority section);
//   - `<label>.<zone>` while the Store holds values there (a challenge in flight): TXT
//     answers them with the configured TTL; other types have no data;
//   - every other name in the zone: NXDOMAIN;
//   - the Store failing: SERVFAIL (never a wrong NXDOMAIN);
//   - opcodes other than QUERY: NOTIMP; zone transfers (AXFR, IXFR) and several
//     questions in one message: REFUSED / FORMERR.
//
// Every in-zone answer is authoritative (AA) and names the question as asked (resolvers
// randomize its case, DNS 0x20). Answers over UDP are truncated to the client's EDNS
// size (512 octets without EDNS) with TC set, so the client retries over TCP.
type Server struct {
	cfg   ServerConfig
	store Store
	log   *zap.Logger
	zone  string // FQDN
	soa   *dns.SOA
	ns    []dns.RR
}

// NewServer returns a server answering from store.
func NewServer(cfg ServerConfig, store Store, log *zap.Logger) (*Server, error) {
	if cfg.Zone == "" || len(cfg.Nameservers) == 0 {
		return nil, errors.New("delegation server: a zone and at least one nameserver are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 2 * time.Second
	}
	zone := dns.Fqdn(strings.ToLower(cfg.Zone))
	ttl := uint32(cfg.TTL / time.Second)
	s := &Server{cfg: cfg, store: store, log: log, zone: zone}
	s.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      dns.Fqdn(strings.ToLower(cfg.Nameservers[0])),
		Mbox:    "hostmaster." + zone,
		Serial:  1, // nothing transfers the zone: the serial never needs to move
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: ttl,
	}
	for _, n := range cfg.Nameservers {
		s.ns = append(s.ns, &dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: dns.Fqdn(strings.ToLower(n))})
	}
	return s, nil
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := s.answer(r)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing a DNS answer failed", zap.Error(err))
	}
}

func (s *Server) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, false)
	}
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != dns.ClassINET || q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR || !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	if name == s.zone {
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = []dns.RR{withName(s.soa, q.Name)}
		case dns.TypeNS:
			for _, rr := range s.ns {
				m.Answer = append(m.Answer, withName(rr, q.Name))
			}
		default:
			m.Ns = []dns.RR{s.soa}
		}
		return m
	}
	label := strings.TrimSuffix(name, "."+s.zone)
	if strings.Contains(label, ".") {
		return s.nxdomain(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	values, err := s.store.Values(ctx, label)
	if err != nil {
		s.log.Warn("the delegation store failed; answering SERVFAIL", zap.String("label", label), zap.Error(err))
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	if len(values) == 0 {
		return s.nxdomain(m)
	}
	if q.Qtype != dns.TypeTXT && q.Qtype != dns.TypeANY {
		m.Ns = []dns.RR{s.soa}
		return m
	}
	ttl := uint32(s.cfg.TTL / time.Second)
	for _, v := range values {
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: []string{v}})
	}
	return m
}

func (s *Server) nxdomain(m *dns.Msg) *dns.Msg {
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{s.soa}
	return m
}

func withName(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}

// Listener is the server bound to one address over UDP and TCP.
type Listener struct {
	udp, tcp *dns.Server
	addr     net.Addr
}

// Listen binds addr (host:port) over UDP and TCP, so that a port taken is an error at
// start rather than later. Port 0 picks a port free for both.
func (s *Server) Listen(addr string) (*Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("delegation DNS listener: %w", err)
	}
	tries := 1
	if port == "0" {
		tries = 20 // the port UDP got may be taken for TCP
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("delegation DNS listener: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if i+1 < tries {
				continue
			}
			return nil, fmt.Errorf("delegation DNS listener: %w", err)
		}
		return &Listener{
			udp:  &dns.Server{PacketConn: pc, Handler: s},
			tcp:  &dns.Server{Listener: ln, Handler: s, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
			addr: pc.LocalAddr(),
		}, nil
	}
}

// Addr is the bound address (UDP and TCP share the port).
func (l *Listener) Addr() net.Addr { return l.addr }

// Run serves until ctx ends, then shuts both listeners down.
func (l *Listener) Run(ctx context.Context) error {
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for _, srv := range []*dns.Server{l.udp, l.tcp} {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		wg.Go(func() {
			err := srv.ActivateAndServe()
			errs <- err
		})
	}
	// Shutting down a server that has not started yet would not stop it.
	startedCh := make(chan struct{})
	go func() { started.Wait(); close(startedCh) }()
	var err error
	select {
	case <-startedCh:
		select {
		case <-ctx.Done():
		case err = <-errs:
		}
	case err = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = l.udp.ShutdownContext(sctx)
	_ = l.tcp.ShutdownContext(sctx)
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("delegation DNS server: %w", err)
	}
	return nil
}
