// Package proxyprotocol accepts the PROXY protocol (v1 and v2) on a listener, from the
// load balancers' addresses only, so the client address survives an L4 load balancer
// (github.com/pires/go-proxyproto does the parsing).
//
// A connection from a listed CIDR must begin with a PROXY header (the spec forbids
// guessing), and its RemoteAddr becomes the client's address from the header. Any other
// connection is passed through untouched: a PROXY header it sends is just bytes that TLS
// or HTTP will reject, so a client cannot forge its address. With no CIDRs configured the
// listener is returned as it is, with no cost per connection.
package proxyprotocol

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// Wrap returns l accepting PROXY headers from the CIDRs in from, reading each header
// within headerTimeout.
func Wrap(l net.Listener, from []netip.Prefix, headerTimeout time.Duration) net.Listener {
	if len(from) == 0 {
		return l
	}
	return &proxyproto.Listener{
		Listener:          l,
		ReadHeaderTimeout: headerTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ContainsAddr(from, o.Upstream) {
				return proxyproto.REQUIRE, nil
			}
			return proxyproto.SKIP, nil
		},
	}
}

// ContainsAddr reports whether a TCP address is inside one of the prefixes.
func ContainsAddr(prefixes []netip.Prefix, addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	return ok && Contains(prefixes, ip.Unmap())
}

// Contains reports whether ip is inside one of the prefixes.
func Contains(prefixes []netip.Prefix, ip netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads a comma-separated list of CIDRs; a bare address is a single-host
// prefix. IPv4-mapped IPv6 forms are unmapped.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", f)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR: %v", f, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
