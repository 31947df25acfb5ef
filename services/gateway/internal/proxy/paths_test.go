package proxy

import (
	"net/netip"
	"testing"
)

func TestIsValidationPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/.well-known/acme-challenge/token", true},
		{"/.well-known/pki-validation/file.txt", true},
		{"/.well-known/acme-challenge/", true},
		{"/x/../.well-known/acme-challenge/t", true},
		{"//.well-known/acme-challenge/t", true},
		{"/.well-known/acme-challenge/../../admin", false},
		{"/.well-known/acme-challenge", false},
		{"/.well-known/security.txt", false},
		{"/", false},
		{"/acme-challenge/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := isValidationPath(tt.path); got != tt.want {
				t.Errorf("isValidationPath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestHostWithoutPort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop.example.com", "shop.example.com"},
		{"shop.example.com:8443", "shop.example.com"},
		{"shop.example.com.", "shop.example.com."},
		{"[::1]:443", "[::1]:443"},
		{"127.0.0.1:80", "127.0.0.1"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := hostWithoutPort(tt.in); got != tt.want {
				t.Errorf("hostWithoutPort(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestClientIn(t *testing.T) {
	p := &Proxy{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	tests := []struct {
		chain, peer, want string
	}{
		{"203.0.113.5", "10.0.0.1", "203.0.113.5"},
		{"198.51.100.1, 203.0.113.5", "10.0.0.1", "203.0.113.5"},
		{"198.51.100.1, 10.1.1.1", "10.0.0.1", "198.51.100.1"},
		{"10.2.2.2, 10.1.1.1", "10.0.0.1", "10.2.2.2"},
		{"garbage, 10.1.1.1", "10.0.0.1", "10.1.1.1"},
		{"198.51.100.1,::1", "::1", "198.51.100.1"},
		{"::ffff:203.0.113.7", "10.0.0.1", "203.0.113.7"},
		{" 203.0.113.5 ", "10.0.0.1", "203.0.113.5"},
	}
	for _, tt := range tests {
		t.Run(tt.chain, func(t *testing.T) {
			if got := p.clientIn(tt.chain, tt.peer); got != tt.want {
				t.Errorf("clientIn(%q) = %q, want %q", tt.chain, got, tt.want)
			}
		})
	}
}
