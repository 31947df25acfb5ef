package dnscheck

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// MaxCNAMEChain is how many CNAME links the delegation check follows from
// `_acme-challenge.<domain>` before it gives up (the CA's resolvers follow about as
// many).
const MaxCNAMEChain = 8

// Delegation checks that `_acme-challenge.<base>` leads to target (`<label>.<delegation
// zone>`) through CNAMEs: directly, or through a chain of at most MaxCNAMEChain links.
// Each link is read from the authoritative servers of its zone, found by NS lookups
// through the resolvers (so a resolver's cached "no such name" from before the customer
// published the record does not hide it), unless AskResolversOnly. A failure says what
// is missing: no CNAME, a CNAME to another target, or a chain too long.
func (c *Checker) Delegation(ctx context.Context, base, target string) Result {
	start := "_acme-challenge." + base
	target = canonical(target)
	zone := target[strings.IndexByte(target, '.')+1:]
	chain := []string{start}
	for name := start; ; {
		next, err := c.cname(ctx, name)
		if err != nil {
			return indeterminate(err)
		}
		links := len(chain) // counting the one just read
		switch {
		case next == target:
			return ok()
		case next == "" && links == 1:
			return failed("no CNAME at %s; publish %s CNAME %s", start, start, target)
		case next == "":
			return failed("the CNAME chain %s ends without reaching %s", strings.Join(chain, " -> "), target)
		case next == zone || strings.HasSuffix(next, "."+zone):
			// Inside the delegation zone nothing CNAMEs further: another label is a
			// mistake (an old record, another domain's label), not a chain to follow.
			if links == 1 {
				return failed("%s is a CNAME to %s, not to %s", start, next, target)
			}
			return failed("the CNAME chain %s -> %s reaches another name than %s", strings.Join(chain, " -> "), next, target)
		case links == MaxCNAMEChain:
			return failed("the CNAME chain from %s is longer than %d links without reaching %s", start, MaxCNAMEChain, target)
		}
		chain = append(chain, next)
		name = next
	}
}

// cname returns the target of the CNAME at name ("" when there is none), asked of the
// authoritative servers of name's zone.
func (c *Checker) cname(ctx context.Context, name string) (string, error) {
	servers, recursion := c.cfg.Resolvers, true
	if !c.cfg.AskResolversOnly {
		auth, err := c.authoritativeServers(ctx, name)
		if err != nil {
			return "", err
		}
		if len(auth) > 0 {
			servers, recursion = auth, false
		}
	}
	msg, err := c.queryAt(ctx, servers, name, dns.TypeCNAME, recursion)
	if err != nil {
		return "", err
	}
	for _, rr := range msg.Answer {
		if cn, isCNAME := rr.(*dns.CNAME); isCNAME && canonical(cn.Hdr.Name) == name {
			return canonical(cn.Target), nil
		}
	}
	return "", nil
}

// authoritativeServers finds the nameservers of the zone name lies in: NS lookups
// through the resolvers from name up to the registered domain's parent, the first NS set
// owned by the name asked, and their addresses (A and AAAA) on AuthoritativePort. None
// found (no NS set up to the top-level domain): the caller asks the resolvers.
func (c *Checker) authoritativeServers(ctx context.Context, name string) ([]string, error) {
	for zone := name; strings.Contains(zone, "."); zone = zone[strings.IndexByte(zone, '.')+1:] {
		msg, err := c.query(ctx, zone, dns.TypeNS)
		if err != nil {
			return nil, err
		}
		var hosts []string
		glue := map[string][]string{}
		for _, rr := range msg.Answer {
			if ns, isNS := rr.(*dns.NS); isNS && canonical(ns.Hdr.Name) == zone {
				hosts = append(hosts, canonical(ns.Ns))
			}
		}
		if len(hosts) == 0 {
			continue
		}
		for _, rr := range msg.Extra {
			switch rr := rr.(type) {
			case *dns.A:
				glue[canonical(rr.Hdr.Name)] = append(glue[canonical(rr.Hdr.Name)], rr.A.String())
			case *dns.AAAA:
				glue[canonical(rr.Hdr.Name)] = append(glue[canonical(rr.Hdr.Name)], rr.AAAA.String())
			}
		}
		var servers []string
		port := strconv.Itoa(c.cfg.AuthoritativePort)
		var lookupErr error
		for _, h := range hosts {
			addrs := glue[h]
			if len(addrs) == 0 {
				addrs, err = c.addresses(ctx, h)
				if err != nil {
					lookupErr = err
					continue
				}
			}
			for _, a := range addrs {
				servers = append(servers, net.JoinHostPort(a, port))
			}
		}
		if len(servers) == 0 {
			if lookupErr != nil {
				return nil, lookupErr
			}
			return nil, fmt.Errorf("the nameservers of %s (%s) have no addresses", zone, strings.Join(hosts, ", "))
		}
		return servers, nil
	}
	return nil, nil
}

// addresses resolves host's A and AAAA records through the resolvers.
func (c *Checker) addresses(ctx context.Context, host string) ([]string, error) {
	var out []string
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		msg, err := c.query(ctx, host, qtype)
		if err != nil {
			return nil, err
		}
		for _, rr := range msg.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				out = append(out, rr.A.String())
			case *dns.AAAA:
				out = append(out, rr.AAAA.String())
			}
		}
	}
	return out, nil
}

// Wildcard describes a wildcard-kind domain for its checks.
type Wildcard struct {
	// Base is the name the certificate is built around (`example.com` for
	// `*.example.com`).
	Base string
	// Apex says the domain serves Base itself too (APEX_AND_WILDCARD), so Base must
	// point at the edge as well as `*.<Base>`.
	Apex bool
	// Target is `<label>.<delegation zone>`.
	Target string
}

// routingNames are the names a wildcard domain serves, which must point at the edge.
func (w Wildcard) routingNames() []string {
	if w.Apex {
		return []string{w.Base, "*." + w.Base}
	}
	return []string{"*." + w.Base}
}

// PreflightWildcard runs the checks due before a wildcard order: the served names point
// at the edge, the `_acme-challenge` CNAME delegates to the domain's label, and CAA
// allows the CA for both names of the certificate (issuewild for `*.<base>`).
func (c *Checker) PreflightWildcard(ctx context.Context, w Wildcard) Result {
	if r := c.pointsAtEdge(ctx, w); r.Verdict != lifecycle.VerdictOK {
		return prefixed("pre-flight (points at the edge): ", r)
	}
	if r := c.Delegation(ctx, w.Base, w.Target); r.Verdict != lifecycle.VerdictOK {
		return prefixed("pre-flight (delegation): ", r)
	}
	if r := c.CAA(ctx, "*."+w.Base, true); r.Verdict != lifecycle.VerdictOK {
		return prefixed("pre-flight (CAA): ", r)
	}
	return prefixed("pre-flight (CAA): ", c.CAA(ctx, w.Base, false))
}

// ReverifyWildcard is the re-verification of an active wildcard domain: its names still
// point at the edge and its delegation is still in place (a removed CNAME would fail the
// next renewal, so it counts as leaving).
func (c *Checker) ReverifyWildcard(ctx context.Context, w Wildcard) Result {
	if r := c.pointsAtEdge(ctx, w); r.Verdict != lifecycle.VerdictOK {
		return r
	}
	r := c.Delegation(ctx, w.Base, w.Target)
	if r.Verdict == lifecycle.VerdictFailed {
		r.Reason = "delegation: " + r.Reason
	}
	return r
}

func (c *Checker) pointsAtEdge(ctx context.Context, w Wildcard) Result {
	for _, n := range w.routingNames() {
		if r := c.PointsAtEdge(ctx, n); r.Verdict != lifecycle.VerdictOK {
			return r
		}
	}
	return ok()
}

func prefixed(prefix string, r Result) Result {
	if r.Verdict == lifecycle.VerdictFailed {
		r.Reason = prefix + r.Reason
	}
	return r
}
