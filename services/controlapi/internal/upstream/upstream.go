// Package upstream decides which upstream overrides a tenant may set on a domain.
//
// An override is `host:port`. The operator lists what is allowed (-upstream-allow), as
// comma-separated entries of two forms:
//
//   - a CIDR prefix, such as `10.20.0.0/16` or `2001:db8::/32`: IP literals inside it,
//     any port;
//   - a host pattern with a port pattern, such as `backend.internal:8080`,
//     `*.svc.cluster.local:443` or `app.example.net:*`. `*.` matches one or more labels;
//     `*` as the port matches any port.
//
// Whatever the list says, these addresses are refused unless an entry names them
// explicitly (a CIDR entry lying entirely inside the special range, or an exact host
// entry): loopback, link-local (which holds the cloud metadata endpoint 169.254.169.254),
// unspecified, multicast, the other well-known metadata addresses (fd00:ec2::254,
// 100.100.100.200) and the host names `localhost`, `*.localhost` and
// `metadata.google.internal`. `0.0.0.0/0` therefore does not open loopback; `127.0.0.1/32`
// does.
//
// Host names are matched as written, not resolved: what a listed name resolves to is the
// operator's responsibility (and resolving here would invite DNS rebinding anyway).
// An empty list refuses every override.
package upstream

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/pkg/errkind"
)

// Rules named in field violations.
const (
	RuleHostPort         = "host-port"
	RuleNotAllowed       = "not-allowed"
	RuleForbiddenAddress = "forbidden-address"
)

// special ranges are refused unless explicitly allowed.
var specialPrefixes = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata lives there)"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address"},
}

var specialHosts = []string{"localhost", "metadata.google.internal"}

// Policy is a parsed allow-list.
type Policy struct {
	prefixes []netip.Prefix
	hosts    []hostEntry
}

type hostEntry struct {
	host     string // lowercase; "*.suffix" for a pattern
	anyPort  bool
	port     uint16
	original string
}

// Parse reads the comma-separated allow-list.
func Parse(list string) (Policy, error) {
	var p Policy
	for _, raw := range strings.Split(list, ",") {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if strings.Contains(e, "/") {
			pfx, err := netip.ParsePrefix(e)
			if err != nil {
				return Policy{}, fmt.Errorf("entry %q: not a CIDR prefix: %v", e, err)
			}
			p.prefixes = append(p.prefixes, pfx.Masked())
			continue
		}
		host, port, err := net.SplitHostPort(e)
		if err != nil {
			return Policy{}, fmt.Errorf("entry %q: want a CIDR prefix or host:port (port may be *): %v", e, err)
		}
		he := hostEntry{host: strings.ToLower(strings.TrimSuffix(host, ".")), original: e}
		if _, err := netip.ParseAddr(host); err == nil {
			return Policy{}, fmt.Errorf("entry %q: write an IP address as a CIDR prefix (%s/32 or /128)", e, host)
		}
		if strings.Contains(strings.TrimPrefix(he.host, "*."), "*") || he.host == "*" || he.host == "" {
			return Policy{}, fmt.Errorf("entry %q: '*' may only be a whole first label (*.example.com)", e)
		}
		if port == "*" {
			he.anyPort = true
		} else if he.port, err = parsePort(port); err != nil {
			return Policy{}, fmt.Errorf("entry %q: %v", e, err)
		}
		p.hosts = append(p.hosts, he)
	}
	return p, nil
}

// Empty reports whether the list allows nothing.
func (p Policy) Empty() bool { return len(p.prefixes) == 0 && len(p.hosts) == 0 }

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not 1 to 65535", s)
	}
	return uint16(n), nil
}

// Check validates an override against the policy. field names the request field in the
// error, which is an errkind InvalidArgument with one field violation.
func (p Policy) Check(field, upstream string) error {
	host, portStr, err := net.SplitHostPort(upstream)
	if err != nil || host == "" {
		return errkind.Invalid(field, RuleHostPort, "%q is not host:port (IPv6 in brackets: [2001:db8::1]:443)", upstream)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return errkind.Invalid(field, RuleHostPort, "%v", err)
	}
	if p.Empty() {
		return errkind.Invalid(field, RuleNotAllowed, "upstream overrides are not enabled on this installation")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.checkIP(field, upstream, ip)
	}
	return p.checkHost(field, upstream, strings.ToLower(strings.TrimSuffix(host, ".")), port)
}

func (p Policy) checkIP(field, upstream string, ip netip.Addr) error {
	if ip.Zone() != "" {
		return errkind.Invalid(field, RuleForbiddenAddress, "%q has an IPv6 zone; zones are never allowed", upstream)
	}
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	var special *netip.Prefix
	var why string
	for _, s := range specialPrefixes {
		if s.prefix.Contains(ip) {
			special, why = &s.prefix, s.why
			break
		}
	}
	for _, allowed := range p.prefixes {
		if !allowed.Contains(ip) {
			continue
		}
		if special == nil || (allowed.Bits() >= special.Bits() && special.Contains(allowed.Addr())) {
			return nil
		}
	}
	if special != nil {
		return errkind.Invalid(field, RuleForbiddenAddress, "%s is %s, which the operator has not allowed explicitly", ip, why)
	}
	return errkind.Invalid(field, RuleNotAllowed, "%q is not in the operator's upstream allow-list", upstream)
}

func (p Policy) checkHost(field, upstream, host string, port uint16) error {
	special := strings.HasSuffix(host, ".localhost")
	for _, s := range specialHosts {
		special = special || host == s
	}
	for _, e := range p.hosts {
		if !e.anyPort && e.port != port {
			continue
		}
		if e.host == host {
			return nil // an exact entry allows even a special name
		}
		if suffix, ok := strings.CutPrefix(e.host, "*"); ok && strings.HasSuffix(host, suffix) && len(host) > len(suffix) && !special {
			return nil
		}
	}
	if special {
		return errkind.Invalid(field, RuleForbiddenAddress, "%q names this machine or a metadata service, which the operator has not allowed explicitly", host)
	}
	return errkind.Invalid(field, RuleNotAllowed, "%q is not in the operator's upstream allow-list", upstream)
}
