package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pkg/hostname"
)

// FuzzForwardedFor: whatever a trusted proxy sends as X-Forwarded-For, X-Real-IP comes
// out as the peer or a valid IP address taken from the chain.
func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{"203.0.113.5", "10.0.0.1, 198.51.100.1", "garbage, 10.1.1.1", ",,", " , ::1", "::ffff:1.2.3.4,", "1.2.3.4:80"} {
		f.Add(s)
	}
	p := &Proxy{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	f.Fuzz(func(t *testing.T, chain string) {
		got := p.clientIn(chain, "10.0.0.1")
		if got == "10.0.0.1" {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil || a.Is4In6() {
			t.Fatalf("clientIn(%q) = %q, not a plain IP address", chain, got)
		}
		for _, e := range strings.Split(chain, ",") {
			if b, err := netip.ParseAddr(strings.TrimSpace(e)); err == nil && b.Unmap() == a {
				return
			}
		}
		t.Fatalf("clientIn(%q) = %q, not an address of the chain", chain, got)
	})
}

// FuzzHostMatch: the Host check never panics, accepts the SNI name itself, and accepts a
// Host only if it normalizes to the same name.
func FuzzHostMatch(f *testing.F) {
	for _, s := range []string{"shop.example.com", "SHOP.example.com.:443", "[::1]:443", "127.0.0.1", "", ":", "xn--bcher-kva.example", "bücher.example"} {
		f.Add(s)
	}
	p := &Proxy{}
	f.Fuzz(func(t *testing.T, host string) {
		const sni = "shop.example.com"
		h := hostWithoutPort(host)
		if !strings.HasPrefix(host, h) {
			t.Fatalf("hostWithoutPort(%q) = %q, not a prefix", host, h)
		}
		same := p.sameName(h, sni)
		n, err := hostname.Normalize(h)
		if same != (err == nil && n == sni) {
			t.Fatalf("sameName(%q) = %v, Normalize = %q, %v", h, same, n, err)
		}
		isValidationPath(host) // must not panic on any path either
	})
}
