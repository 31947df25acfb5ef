package main

import (
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	base := []string{"-edge-addresses", "203.0.113.10"}
	tests := []struct {
		name    string
		args    []string
		wantErr string // a substring naming the flag; empty: valid
	}{
		{name: "defaults with the edge set", args: base},
		{name: "no edge at all", args: nil, wantErr: "-edge-addresses"},
		{name: "edge by CNAME only", args: []string{"-edge-cname", "edge.platform.example.net"}},
		{name: "bad edge address", args: []string{"-edge-addresses", "203.0.113.300"}, wantErr: "-edge-addresses"},
		{name: "plain-HTTP directory", args: append([]string{"-acme-directory", "http://ca.example/dir"}, base...), wantErr: "-acme-directory"},
		{name: "unknown key type", args: append([]string{"-acme-key-type", "ed25519"}, base...), wantErr: "-acme-key-type"},
		{name: "RSA keys", args: append([]string{"-acme-key-type", "rsa2048"}, base...)},
		{name: "half an EAB", args: append([]string{"-acme-eab-kid", "kid-1"}, base...), wantErr: "-acme-eab-kid"},
		{name: "resolver without a port", args: append([]string{"-dns-resolvers", "1.1.1.1"}, base...), wantErr: "-dns-resolvers"},
		{name: "no resolver", args: append([]string{"-dns-resolvers", " , "}, base...), wantErr: "-dns-resolvers"},
		{name: "zero re-verification failures", args: append([]string{"-reverify-failures", "0"}, base...), wantErr: "-reverify-failures"},
		{name: "extra TLDs for test zones", args: append([]string{"-hostname-extra-tlds", "test"}, base...)},
		{name: "delegation with the built-in server", args: append([]string{"-delegation-zone", "acme.portico.net", "-delegation-nameservers", "ns1.portico.net,ns2.portico.net"}, base...)},
		{name: "built-in server without nameservers", args: append([]string{"-delegation-zone", "acme.portico.net"}, base...), wantErr: "-delegation-nameservers"},
		{name: "a nameserver inside the zone", args: append([]string{"-delegation-zone", "acme.portico.net", "-delegation-nameservers", "ns1.acme.portico.net"}, base...), wantErr: "-delegation-nameservers"},
		{name: "built-in server on a bad address", args: append([]string{"-delegation-zone", "acme.portico.net", "-delegation-nameservers", "ns1.portico.net", "-delegation-dns-listen", "53"}, base...), wantErr: "-delegation-dns-listen"},
		{name: "delegation TTL of an hour and more", args: append([]string{"-delegation-zone", "acme.portico.net", "-delegation-nameservers", "ns1.portico.net", "-delegation-ttl", "2h"}, base...), wantErr: "-delegation-ttl"},
		{name: "a public suffix as the zone", args: append([]string{"-delegation-zone", "co.uk", "-delegation-nameservers", "ns1.portico.net"}, base...), wantErr: "-delegation-zone"},
		{name: "a lego DNS provider", args: append([]string{"-delegation-zone", "acme.portico.net", "-delegation-writer", "route53"}, base...)},
		{name: "a lego DNS provider not built in", args: append([]string{"-delegation-zone", "acme.portico.net", "-delegation-writer", "azuredns"}, base...), wantErr: "-delegation-writer"},
		{name: "writer settings without a zone are ignored", args: append([]string{"-delegation-writer", "nonsense"}, base...)},
		{name: "authoritative port out of range", args: append([]string{"-dns-authoritative-port", "70000"}, base...), wantErr: "-dns-authoritative-port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
			}
			if err == nil && cfg.Worker.Policy.VerifyDeadline != 7*24*3600e9 {
				t.Fatalf("default verification deadline %v, want 7 days", cfg.Worker.Policy.VerifyDeadline)
			}
		})
	}
}
