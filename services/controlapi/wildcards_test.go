package main

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/portico-dev/portico/pkg/domains"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
)

// delegationTarget returns the value of d's `_acme-challenge` CNAME.
func delegationTarget(t *testing.T, d *controlv1.Domain, base string) string {
	t.Helper()
	for _, r := range d.GetDnsRecords() {
		if r.GetType() == "CNAME" && r.GetName() == "_acme-challenge."+base {
			return r.GetValue()
		}
	}
	t.Fatalf("%s: no _acme-challenge CNAME in %v", d.GetHostname(), d.GetDnsRecords())
	return ""
}

// TestDelegationLabels: each wildcard claim gets its own label, 80 random bits as 16
// lowercase base32 characters, in the configured zone; a claim deleted and made again
// gets a new one (an old CNAME left behind proves nothing for the new claim).
func TestDelegationLabels(t *testing.T) {
	h := startControlAPI(t, harnessOptions{args: []string{"-delegation-zone", "acme-challenge.portico.example.net"},
		certstore: serveFake(t, &certWriteServiceDesc, &fakeCertstore{})})
	acme, other := h.createTenant("acme"), h.createTenant("other")
	label := regexp.MustCompile(`^[a-z2-7]{16}\.acme-challenge\.portico\.example\.net$`)
	seen := map[string]string{}
	claim := func(key, host string, sub bool, base string) {
		resp, err := h.domains.CreateDomain(withKey(t.Context(), key), &controlv1.CreateDomainRequest{Hostname: host, IncludeSubdomains: sub})
		if err != nil {
			t.Fatalf("create %s: %v", host, err)
		}
		target := delegationTarget(t, resp.GetDomain(), base)
		if !label.MatchString(target) {
			t.Fatalf("%s: delegation target %q, want 16 base32 characters in the zone", host, target)
		}
		if prev, dup := seen[target]; dup {
			t.Fatalf("%s and %s share the delegation target %s", prev, host, target)
		}
		seen[target] = host
		stored, _ := h.store.GetDomain(t.Context(), resp.GetDomain().GetHostname())
		if stored.DelegationLabel+".acme-challenge.portico.example.net" != target {
			t.Fatalf("stored label %q, answered target %q", stored.DelegationLabel, target)
		}
	}
	claim(acme, "*.example.com", false, "example.com")
	claim(acme, "example.org", true, "example.org")
	claim(other, "*.shop.example.net", false, "shop.example.net")
	if _, err := h.domains.DeleteDomain(withKey(t.Context(), acme), &controlv1.DeleteDomainRequest{Hostname: "*.example.com"}); err != nil {
		t.Fatal(err)
	}
	claim(acme, "*.example.com", false, "example.com")
}

// TestWildcardKindsOfOneBaseExcludeEachOther: `*.example.com` and `example.com` with
// include_subdomains would share `_acme-challenge.example.com` and the certstore name
// `*.example.com`; the second claim is ALREADY_EXISTS, for the same tenant or another.
// Exact names beside a wildcard stay allowed.
func TestWildcardKindsOfOneBaseExcludeEachOther(t *testing.T) {
	h := startControlAPI(t, harnessOptions{args: []string{"-delegation-zone", "acme-challenge.portico.example.net"}})
	acme, other := h.createTenant("acme"), h.createTenant("other")
	h.createDomain(acme, "*.example.com")
	if _, err := h.domains.CreateDomain(withKey(t.Context(), acme), &controlv1.CreateDomainRequest{Hostname: "example.org", IncludeSubdomains: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		req  *controlv1.CreateDomainRequest
		want codes.Code
	}{
		{"apex and wildcard beside a wildcard, same tenant", acme, &controlv1.CreateDomainRequest{Hostname: "example.com", IncludeSubdomains: true}, codes.AlreadyExists},
		{"apex and wildcard beside a wildcard, another tenant", other, &controlv1.CreateDomainRequest{Hostname: "example.com", IncludeSubdomains: true}, codes.AlreadyExists},
		{"wildcard beside an apex and wildcard", acme, &controlv1.CreateDomainRequest{Hostname: "*.example.org"}, codes.AlreadyExists},
		{"the exact apex beside a wildcard", acme, &controlv1.CreateDomainRequest{Hostname: "example.com"}, codes.OK},
		{"a deeper wildcard", acme, &controlv1.CreateDomainRequest{Hostname: "*.shop.example.com"}, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.domains.CreateDomain(withKey(t.Context(), tc.key), tc.req)
			if status.Code(err) != tc.want {
				t.Fatalf("create %v: %v, want %v", tc.req, err, tc.want)
			}
		})
	}
}

// TestApexAndWildcardIsServedUnderBothNames: an APEX_AND_WILDCARD domain's route is
// pushed, and its route and certificate deleted, under `example.com` and `*.example.com`;
// a wildcard claim that never got a certificate leaves the other claim's `*.` name
// alone when it is deleted.
func TestApexAndWildcardIsServedUnderBothNames(t *testing.T) {
	certstore := &fakeCertstore{}
	h := startControlAPI(t, harnessOptions{args: []string{"-delegation-zone", "acme-challenge.portico.example.net"},
		certstore: serveFake(t, &certWriteServiceDesc, certstore)})
	key := h.createTenant("acme")
	if _, err := h.domains.CreateDomain(withKey(t.Context(), key), &controlv1.CreateDomainRequest{Hostname: "example.com", IncludeSubdomains: true}); err != nil {
		t.Fatal(err)
	}
	active := makeActive(t, h, "example.com")
	if _, err := h.domains.UpdateDomain(withKey(t.Context(), key), &controlv1.UpdateDomainRequest{Hostname: "example.com", Upstream: proto.String("10.20.0.7:80")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.com", "*.example.com"} {
		if r, ok := certstore.route(name); !ok || r.GetUpstream() != "10.20.0.7:80" {
			t.Fatalf("route of %s: %v, want the new upstream", name, r)
		}
	}
	if _, err := h.domains.DeleteDomain(withKey(t.Context(), key), &controlv1.DeleteDomainRequest{Hostname: "example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := certstore.routesDeleted(); !slices.Equal(got, []string{"example.com", "*.example.com"}) {
		t.Fatalf("routes deleted %v, want both names", got)
	}
	for _, name := range []string{"example.com", "*.example.com"} {
		if token, ok := certstore.certificateDeleted(name); !ok || token <= active.Version {
			t.Fatalf("certificate of %s deleted: %v (token %d)", name, ok, token)
		}
	}

	// Two claims of one base can only coexist through a race; the one without a
	// certificate must not take the other's name with it.
	h.createDomain(key, "*.example.net")
	now := time.Now()
	if _, err := h.store.CreateDomain(t.Context(), domains.Domain{Hostname: "example.net", TenantID: "acme", Kind: domains.KindApexAndWildcard,
		RegisteredDomain: "example.net", Status: domains.StatusActive, DelegationLabel: "racedlabel", CreatedAt: now, UpdatedAt: now,
		Certificate: domains.CertificateInfo{Serial: "0c", NotAfter: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.domains.DeleteDomain(withKey(t.Context(), key), &controlv1.DeleteDomainRequest{Hostname: "*.example.net"}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(certstore.routesDeleted(), "*.example.net") {
		t.Fatal("deleting the wildcard claim without a certificate removed the route the apex-and-wildcard claim serves")
	}
	if _, err := h.store.GetDomain(t.Context(), "*.example.net"); err == nil {
		t.Fatal("the wildcard claim is still stored")
	}
}
