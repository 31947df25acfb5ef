package upstream

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/portico-dev/portico/pkg/errkind"
)

func TestCheck(t *testing.T) {
	const list = "10.20.0.0/16, 2001:db8::/32, 0.0.0.0/0, backend.internal:8080, *.svc.cluster.local:443, app.example.net:*, 127.0.0.1/32, metadata.google.internal:80"
	p, err := Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		upstream string
		wantRule string // empty: allowed
	}{
		{"IPv4 inside a prefix", "10.20.3.4:8080", ""},
		{"IPv6 inside a prefix", "[2001:db8::7]:443", ""},
		{"any public IPv4 under 0.0.0.0/0", "203.0.113.9:80", ""},
		{"exact host and port", "backend.internal:8080", ""},
		{"exact host, other port", "backend.internal:8081", RuleNotAllowed},
		{"pattern one label down", "api.svc.cluster.local:443", ""},
		{"pattern two labels down", "api.ns.svc.cluster.local:443", ""},
		{"pattern does not match its own base", "svc.cluster.local:443", RuleNotAllowed},
		{"host with any port", "app.example.net:31337", ""},
		{"host matched case-insensitively", "Backend.Internal:8080", ""},
		{"unlisted host", "evil.example.com:443", RuleNotAllowed},
		{"loopback allowed by its own /32", "127.0.0.1:9000", ""},
		{"other loopback not opened by 0.0.0.0/0", "127.0.0.2:9000", RuleForbiddenAddress},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.2]:80", RuleForbiddenAddress},
		{"IPv6 loopback", "[::1]:80", RuleForbiddenAddress},
		{"cloud metadata", "169.254.169.254:80", RuleForbiddenAddress},
		{"link-local IPv6", "[fe80::1]:80", RuleForbiddenAddress},
		{"IPv6 zone", "[fe80::1%eth0]:80", RuleForbiddenAddress},
		{"AWS IPv6 metadata", "[fd00:ec2::254]:80", RuleForbiddenAddress},
		{"unspecified", "0.0.0.0:80", RuleForbiddenAddress},
		{"localhost", "localhost:80", RuleForbiddenAddress},
		{"metadata name listed exactly", "metadata.google.internal:80", ""},
		{"no port", "backend.internal", RuleHostPort},
		{"port zero", "backend.internal:0", RuleHostPort},
		{"port too large", "backend.internal:70000", RuleHostPort},
		{"URL instead of host:port", "http://backend.internal:8080", RuleHostPort},
		{"empty host", ":8080", RuleHostPort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check("upstream", tc.upstream)
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want allowed", tc.upstream, err)
				}
				return
			}
			assertRule(t, err, tc.wantRule)
		})
	}
}

// Metadata addresses inside a broad listed prefix stay forbidden.
func TestMetadataInsideAllowedPrefix(t *testing.T) {
	p, err := Parse("fc00::/7, 100.64.0.0/10")
	if err != nil {
		t.Fatal(err)
	}
	assertRule(t, p.Check("upstream", "[fd00:ec2::254]:80"), RuleForbiddenAddress)
	assertRule(t, p.Check("upstream", "100.100.100.200:80"), RuleForbiddenAddress)
	if err := p.Check("upstream", "100.64.1.1:80"); err != nil {
		t.Fatalf("an ordinary address of the prefix: %v", err)
	}
}

func TestEmptyListRefusesEverything(t *testing.T) {
	p, err := Parse("")
	if err != nil {
		t.Fatal(err)
	}
	assertRule(t, p.Check("upstream", "203.0.113.9:80"), RuleNotAllowed)
}

func TestParseRefusesBadEntries(t *testing.T) {
	for _, entry := range []string{"10.0.0.0/33", "backend.internal", "10.1.2.3:80", "a.*.example.com:80", "*:80", "host:http"} {
		t.Run(entry, func(t *testing.T) {
			if _, err := Parse(entry); err == nil {
				t.Fatalf("Parse(%q) accepted a bad entry", entry)
			}
		})
	}
}

func assertRule(t *testing.T, err error, rule string) {
	t.Helper()
	var e *errkind.Error
	if !errors.As(err, &e) || e.Kind != errkind.InvalidArgument || len(e.Violations) != 1 {
		t.Fatalf("error %v, want one InvalidArgument field violation", err)
	}
	if v := e.Violations[0]; v.Field != "upstream" || v.Rule != rule {
		t.Fatalf("violation %+v, want field upstream rule %s", v, rule)
	}
}

// FuzzCheck: any override either passes or is one InvalidArgument violation; an allowed
// IP literal is never a special address unless a narrow entry names it.
func FuzzCheck(f *testing.F) {
	p, err := Parse("10.0.0.0/8, 0.0.0.0/0, ::/0, *.svc.cluster.local:443, backend.internal:*")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"10.1.2.3:80", "127.0.0.1:80", "[::1]:443", "[::ffff:169.254.169.254]:80", "a.svc.cluster.local:443",
		"localhost:80", "x.localhost:443", "backend.internal:0", "[fe80::1%25eth0]:80", ":80", "host:", "0:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, upstream string) {
		err := p.Check("upstream", upstream)
		if err == nil {
			host, _, _ := net.SplitHostPort(upstream)
			if ip, perr := netip.ParseAddr(host); perr == nil {
				for _, s := range specialPrefixes {
					if s.prefix.Contains(ip.Unmap()) {
						t.Fatalf("%q allowed: %s is %s", upstream, ip, s.why)
					}
				}
			}
			return
		}
		var e *errkind.Error
		if !errors.As(err, &e) || e.Kind != errkind.InvalidArgument || len(e.Violations) != 1 {
			t.Fatalf("Check(%q) = %v", upstream, err)
		}
	})
}
