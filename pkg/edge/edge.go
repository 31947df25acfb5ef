// Package edge describes where customers point their hostnames: the public addresses
// of the edge (the load balancer in front of the gateways) and/or a CNAME target.
// controlapi publishes them as the DNS records a customer must create; the notary checks
// that a hostname points there before it orders a certificate. Both read the same flags,
// -edge-addresses and -edge-cname, so one configuration serves both.
package edge

import (
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/hostname"
)

// Edge is where hostnames must point.
type Edge struct {
	// Addresses are the edge's public IPv4 and IPv6 addresses.
	Addresses []netip.Addr
	// CNAME is the normalized name customers may CNAME their hostnames to; empty for none.
	CNAME string
}

// IPv4 returns the IPv4 addresses (A records).
func (e Edge) IPv4() []netip.Addr { return e.family(true) }

// IPv6 returns the IPv6 addresses (AAAA records).
func (e Edge) IPv6() []netip.Addr { return e.family(false) }

func (e Edge) family(v4 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range e.Addresses {
		if a.Is4() == v4 {
			out = append(out, a)
		}
	}
	return out
}

// Flags are the raw settings, parsed by Validate.
type Flags struct {
	addresses string
	cname     string
}

// RegisterFlags adds -edge-addresses and -edge-cname.
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.addresses, "edge-addresses", "", "the edge's public IP addresses, IPv4 and IPv6, comma-separated: customers publish them as A/AAAA records, and a hostname must resolve only to them unless it CNAMEs to -edge-cname")
	fs.StringVar(&f.cname, "edge-cname", "", "the name customers may CNAME their hostnames to (preferred over A/AAAA except at a zone apex); at least one of -edge-addresses and -edge-cname is required")
}

// Validate parses the flags into an Edge, recording problems by flag name. names decides
// what an acceptable CNAME target is.
func (f *Flags) Validate(p *config.Problems, names hostname.Policy) Edge {
	var e Edge
	for _, s := range config.List(f.addresses) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			p.Addf("edge-addresses", "%q is not an IP address", s)
			continue
		}
		a = a.Unmap()
		if !a.IsGlobalUnicast() && !a.IsLoopback() {
			p.Addf("edge-addresses", "%s cannot be an edge address (not unicast)", a)
			continue
		}
		e.Addresses = append(e.Addresses, a)
	}
	if f.cname != "" {
		n, err := names.Parse(f.cname)
		if err != nil {
			p.Addf("edge-cname", "%v", err)
		}
		e.CNAME = n.ASCII
	}
	if f.addresses == "" && f.cname == "" {
		p.Addf("edge-addresses", "customers need somewhere to point their hostnames: set -edge-addresses, -edge-cname, or both")
	}
	return e
}

// String describes the edge for logs.
func (e Edge) String() string {
	parts := make([]string, 0, len(e.Addresses)+1)
	for _, a := range e.Addresses {
		parts = append(parts, a.String())
	}
	if e.CNAME != "" {
		parts = append(parts, "CNAME "+e.CNAME)
	}
	return fmt.Sprint(strings.Join(parts, ", "))
}
