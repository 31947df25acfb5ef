// Package dnscheck asks DNS the notary's questions: does the ownership TXT record hold
// the tenant's token, does a hostname point at the edge, does CAA allow the CA.
//
// Every answer is a lifecycle.Verdict: OK, Failed (the DNS answered and the answer is
// no, with the reason in stable words) or Indeterminate (SERVFAIL, REFUSED, a timeout,
// no resolver reachable: nothing may be concluded, the caller retries later). Ownership
// checks fail closed: only a TXT record holding the token proves anything.
//
// Queries go to the configured recursive resolvers in order (UDP, TCP when truncated);
// the first definite answer (NOERROR or NXDOMAIN) is used. Tests point the resolvers at
// pebble-challtestsrv on loopback. Queries use github.com/miekg/dns rather than the Go
// resolver, which cannot be pointed at a given server and port, hides SERVFAIL behind a
// generic error and has no CAA.
package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// Config says whom to ask and what the answers must be.
type Config struct {
	// Resolvers are recursive resolvers, host:port, asked in order.
	Resolvers []string
	// Timeout bounds one query to one resolver (default 2 s).
	Timeout time.Duration
	// EdgeAddrs are the addresses a hostname may resolve to (A and AAAA).
	EdgeAddrs []netip.Addr
	// EdgeCNAME is the name a hostname may CNAME to instead (no trailing dot); empty for
	// none.
	EdgeCNAME string
	// CAAIdentities are the CA's issuer domain names as CAA records name them
	// ("letsencrypt.org"). Empty skips the CAA check.
	CAAIdentities []string
	// AskResolversOnly makes the delegation check ask the resolvers instead of the
	// domain's authoritative servers (for networks where only the resolvers are
	// reachable; their cached answers may then lag behind a change).
	AskResolversOnly bool
	// AuthoritativePort is the port authoritative servers are asked on (default 53;
	// tests run theirs elsewhere).
	AuthoritativePort int
}

// Checker answers the notary's DNS questions. It is safe for concurrent use.
type Checker struct {
	cfg Config
	udp *dns.Client
	tcp *dns.Client
}

// New returns a Checker.
func New(cfg Config) (*Checker, error) {
	if len(cfg.Resolvers) == 0 {
		return nil, errors.New("dnscheck: no resolvers")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.AuthoritativePort <= 0 {
		cfg.AuthoritativePort = 53
	}
	cfg.EdgeCNAME = canonical(cfg.EdgeCNAME)
	for i, id := range cfg.CAAIdentities {
		cfg.CAAIdentities[i] = canonical(id)
	}
	return &Checker{
		cfg: cfg,
		udp: &dns.Client{Net: "udp", Timeout: cfg.Timeout, UDPSize: 1232},
		tcp: &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
	}, nil
}

// Result is a verdict with its reason (empty for OK).
type Result struct {
	Verdict lifecycle.Verdict
	Reason  string
}

func ok() Result { return Result{Verdict: lifecycle.VerdictOK} }

func failed(format string, args ...any) Result {
	return Result{Verdict: lifecycle.VerdictFailed, Reason: fmt.Sprintf(format, args...)}
}

func indeterminate(err error) Result {
	return Result{Verdict: lifecycle.VerdictIndeterminate, Reason: err.Error()}
}

// VerifyName is where the ownership TXT record of a registered domain lives.
func VerifyName(registered string) string { return "_verify." + registered }

// Ownership checks that the TXT record at `_verify.<registered>` holds token. The strings
// of one TXT record are joined before comparing (long values are split by DNS into
// strings of at most 255 octets); any one record of the set may hold it.
func (c *Checker) Ownership(ctx context.Context, registered, token string) Result {
	name := VerifyName(registered)
	msg, err := c.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return indeterminate(err)
	}
	var found bool
	for _, rr := range msg.Answer {
		txt, isTXT := rr.(*dns.TXT)
		if !isTXT {
			continue
		}
		found = true
		if strings.TrimSpace(strings.Join(txt.Txt, "")) == token {
			return ok()
		}
	}
	if !found {
		return failed("no TXT record at %s", name)
	}
	return failed("the TXT record at %s does not hold this tenant's verification token", name)
}

// Preflight runs the checks due before any order: the hostname points at the edge, and
// CAA allows the CA. A failure names the check that failed.
func (c *Checker) Preflight(ctx context.Context, host string, wildcard bool) Result {
	if r := c.PointsAtEdge(ctx, host); r.Verdict != lifecycle.VerdictOK {
		if r.Verdict == lifecycle.VerdictFailed {
			r.Reason = "pre-flight (points at the edge): " + r.Reason
		}
		return r
	}
	r := c.CAA(ctx, host, wildcard)
	if r.Verdict == lifecycle.VerdictFailed {
		r.Reason = "pre-flight (CAA): " + r.Reason
	}
	return r
}

// PointsAtEdge checks that host CNAMEs to the edge name, or that every address it
// resolves to (A and AAAA) is an edge address.
func (c *Checker) PointsAtEdge(ctx context.Context, host string) Result {
	var addrs []netip.Addr
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		msg, err := c.query(ctx, host, qtype)
		if err != nil {
			return indeterminate(err)
		}
		for _, rr := range msg.Answer {
			switch rr := rr.(type) {
			case *dns.CNAME:
				if c.cfg.EdgeCNAME != "" && canonical(rr.Target) == c.cfg.EdgeCNAME {
					return ok()
				}
			case *dns.A:
				if a, valid := netip.AddrFromSlice(rr.A.To4()); valid {
					addrs = append(addrs, a)
				}
			case *dns.AAAA:
				if a, valid := netip.AddrFromSlice(rr.AAAA); valid {
					addrs = append(addrs, a)
				}
			}
		}
	}
	if len(c.cfg.EdgeAddrs) == 0 {
		return failed("%s does not CNAME to %s", host, c.cfg.EdgeCNAME)
	}
	if len(addrs) == 0 {
		if c.cfg.EdgeCNAME != "" {
			return failed("%s has no A or AAAA record and no CNAME to %s", host, c.cfg.EdgeCNAME)
		}
		return failed("%s has no A or AAAA record", host)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, a := range addrs {
		if !slices.Contains(c.cfg.EdgeAddrs, a.Unmap()) {
			return failed("%s resolves to %s, which is not an edge address", host, a)
		}
	}
	return ok()
}

// CAA finds the CAA record set that applies to host (RFC 8659: the closest one, climbing
// from the name towards the top-level domain) and checks that it allows one of the CA's
// identities. For a wildcard, issuewild properties apply when present.
func (c *Checker) CAA(ctx context.Context, host string, wildcard bool) Result {
	if len(c.cfg.CAAIdentities) == 0 {
		return ok()
	}
	name := strings.TrimPrefix(host, "*.")
	for strings.Contains(name, ".") {
		msg, err := c.query(ctx, name, dns.TypeCAA)
		if err != nil {
			return indeterminate(err)
		}
		var set []*dns.CAA
		for _, rr := range msg.Answer {
			if caa, isCAA := rr.(*dns.CAA); isCAA {
				set = append(set, caa)
			}
		}
		if len(set) > 0 {
			return EvaluateCAA(name, set, wildcard, c.cfg.CAAIdentities)
		}
		name = name[strings.IndexByte(name, '.')+1:]
	}
	return ok()
}

// EvaluateCAA applies one CAA record set found at owner (RFC 8659 section 4).
func EvaluateCAA(owner string, set []*dns.CAA, wildcard bool, identities []string) Result {
	var issue, issuewild []string
	for _, r := range set {
		switch strings.ToLower(r.Tag) {
		case "issue":
			issue = append(issue, r.Value)
		case "issuewild":
			issuewild = append(issuewild, r.Value)
		case "iodef", "issuemail", "issuevmc", "contactemail", "contactphone":
		default:
			if r.Flag&128 != 0 {
				return failed("CAA at %s has a critical property %q the notary does not understand", owner, r.Tag)
			}
		}
	}
	relevant := issue
	if wildcard && len(issuewild) > 0 {
		relevant = issuewild
	}
	if len(relevant) == 0 {
		return ok() // no issue properties: any CA may issue
	}
	var named []string
	for _, v := range relevant {
		domain, _, _ := strings.Cut(v, ";")
		domain = canonical(strings.TrimSpace(domain))
		if domain == "" {
			continue
		}
		if slices.Contains(identities, domain) {
			return ok()
		}
		named = append(named, domain)
	}
	if len(named) == 0 {
		return failed("CAA at %s forbids every CA", owner)
	}
	slices.Sort(named)
	return failed("CAA at %s allows only %s, not %s", owner, strings.Join(slices.Compact(named), ", "), strings.Join(identities, ", "))
}

// query asks the resolvers in order and returns the first definite answer (NOERROR or
// NXDOMAIN), or an error when none gave one.
func (c *Checker) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return c.queryAt(ctx, c.cfg.Resolvers, name, qtype, true)
}

// queryAt asks servers in order (recursion desired or not) and returns the first
// definite answer.
func (c *Checker) queryAt(ctx context.Context, servers []string, name string, qtype uint16, recursion bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = recursion
	m.SetEdns0(1232, false)
	var errs []error
	for _, server := range servers {
		resp, _, err := c.udp.ExchangeContext(ctx, m, server)
		if err == nil && resp.Truncated {
			resp, _, err = c.tcp.ExchangeContext(ctx, m, server)
		}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %s at %s: %w", dns.TypeToString[qtype], name, server, err))
		case resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError:
			return resp, nil
		default:
			errs = append(errs, fmt.Errorf("%s %s at %s: %s", dns.TypeToString[qtype], name, server, dns.RcodeToString[resp.Rcode]))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no definite DNS answer: %w", errors.Join(errs...))
}

// canonical lowercases a name and drops its trailing dot.
func canonical(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }
