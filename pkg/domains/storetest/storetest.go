// Package storetest is the contract suite every domains.Store implementation runs: one
// test body for memory, Redis and any later backend.
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) domains.Store { return newStoreForTest(t) })
//	}
//
// newStore must return an empty store, isolated from other tests (its own key prefix or
// table), cleaned up by the test.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portico-dev/portico/pkg/domains"
)

// Run runs the whole contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) domains.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s domains.Store)
	}{
		{"TenantLifecycle", testTenantLifecycle},
		{"TenantKeyRotation", testTenantKeyRotation},
		{"TenantListPages", testTenantListPages},
		{"DomainRoundTrip", testDomainRoundTrip},
		{"HostnameHasOneOwner", testHostnameHasOneOwner},
		{"ConcurrentClaimsHaveOneWinner", testConcurrentClaims},
		{"UpdateIsCompareAndSwap", testUpdateIsCompareAndSwap},
		{"ConcurrentUpdatesNeverLoseAWrite", testConcurrentUpdates},
		{"DeleteIsCompareAndSwap", testDeleteIsCompareAndSwap},
		{"ListFiltersAndPages", testListFiltersAndPages},
		{"DueFollowsNextAttempt", testDueFollowsNextAttempt},
		{"VerificationTokens", testVerificationTokens},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// base is a fixed instant with sub-millisecond precision, to catch stores that lose it.
var base = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

// NewTenant is a tenant fixture.
func NewTenant(id string) domains.Tenant {
	return domains.Tenant{ID: id, DisplayName: "Tenant " + id, KeyHash: "hash-" + id, CreatedAt: base, KeyRotatedAt: base}
}

// NewDomain is a pending domain fixture with every field set.
func NewDomain(hostname, tenantID string) domains.Domain {
	return domains.Domain{
		Hostname:          hostname,
		TenantID:          tenantID,
		Kind:              domains.KindExact,
		RegisteredDomain:  "example.com",
		Status:            domains.StatusPendingVerification,
		VerificationToken: "portico-verify=" + tenantID,
		RedirectHTTPS:     true,
		NextAttemptAt:     base,
		VerifyDeadline:    base.Add(7 * 24 * time.Hour),
		CreatedAt:         base,
		UpdatedAt:         base,
	}
}

// equalDomains compares domains with time.Time by instant (stores may drop the location).
var equalDomains = cmp.Options{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })}

func mustCreate(t *testing.T, s domains.Store, d domains.Domain) domains.Domain {
	t.Helper()
	got, err := s.CreateDomain(t.Context(), d)
	if err != nil {
		t.Fatalf("CreateDomain(%s): %v", d.Hostname, err)
	}
	return got
}

func testTenantLifecycle(t *testing.T, s domains.Store) {
	ctx := t.Context()
	tn := NewTenant("acme")
	if err := s.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, tn); !errors.Is(err, domains.ErrAlreadyExists) {
		t.Fatalf("second CreateTenant: %v, want ErrAlreadyExists", err)
	}
	other := NewTenant("other")
	other.KeyHash = tn.KeyHash
	if err := s.CreateTenant(ctx, other); !errors.Is(err, domains.ErrAlreadyExists) {
		t.Fatalf("tenant with a taken key hash: %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetTenant(ctx, "acme")
	if err != nil || !cmp.Equal(got, tn, equalDomains) {
		t.Fatalf("GetTenant = %+v, %v; diff %s", got, err, cmp.Diff(tn, got, equalDomains))
	}
	byKey, err := s.TenantByKeyHash(ctx, tn.KeyHash)
	if err != nil || byKey.ID != "acme" {
		t.Fatalf("TenantByKeyHash = %+v, %v", byKey, err)
	}
	if _, err := s.TenantByKeyHash(ctx, "hash-nobody"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("unknown key: %v, want ErrNotFound", err)
	}
	if _, err := s.GetTenant(ctx, "nobody"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("unknown tenant: %v, want ErrNotFound", err)
	}
	if err := s.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTenant(ctx, "acme"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("deleted tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.TenantByKeyHash(ctx, tn.KeyHash); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("deleted tenant's key still resolves: %v", err)
	}
	if err := s.DeleteTenant(ctx, "acme"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func testTenantKeyRotation(t *testing.T, s domains.Store) {
	ctx := t.Context()
	if err := s.CreateTenant(ctx, NewTenant("acme")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, NewTenant("other")); err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Hour)
	got, err := s.RotateTenantKey(ctx, "acme", "hash-new", at)
	if err != nil || got.KeyHash != "hash-new" || !got.KeyRotatedAt.Equal(at) {
		t.Fatalf("RotateTenantKey = %+v, %v", got, err)
	}
	if _, err := s.TenantByKeyHash(ctx, "hash-acme"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("old key still resolves: %v", err)
	}
	if tn, err := s.TenantByKeyHash(ctx, "hash-new"); err != nil || tn.ID != "acme" {
		t.Fatalf("new key: %+v, %v", tn, err)
	}
	if _, err := s.RotateTenantKey(ctx, "acme", "hash-other", at); !errors.Is(err, domains.ErrAlreadyExists) {
		t.Fatalf("rotating onto another tenant's key hash: %v, want ErrAlreadyExists", err)
	}
	if tn, err := s.TenantByKeyHash(ctx, "hash-other"); err != nil || tn.ID != "other" {
		t.Fatalf("the other tenant's key was disturbed: %+v, %v", tn, err)
	}
	if _, err := s.RotateTenantKey(ctx, "nobody", "hash-x", at); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("rotating a missing tenant: %v, want ErrNotFound", err)
	}
}

func testTenantListPages(t *testing.T, s domains.Store) {
	ctx := t.Context()
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("t%03d", i)
		want = append(want, id)
		if err := s.CreateTenant(ctx, NewTenant(id)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for {
		page, err := s.ListTenants(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("page of %d, limit 7", len(page))
		}
		for _, tn := range page {
			got = append(got, tn.ID)
		}
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !cmp.Equal(got, want) {
		t.Fatalf("tenants over pages: %s", cmp.Diff(want, got))
	}
}

func testDomainRoundTrip(t *testing.T, s domains.Store) {
	ctx := t.Context()
	d := NewDomain("shop.example.com", "acme")
	d.Kind = domains.KindApexAndWildcard
	d.DelegationLabel = "x7kq2"
	d.Upstream = "10.0.0.1:8080"
	d.CoveredBy = "*.example.com"
	d.LastError = "TXT record missing"
	d.VerifiedAt = base.Add(time.Minute)
	d.Certificate = domains.CertificateInfo{Issuer: "CN=Pebble", Serial: "0a1b", NotBefore: base, NotAfter: base.Add(90 * 24 * time.Hour), DNSNames: []string{"shop.example.com"}}
	d.Progress = domains.Progress{OrderURL: "https://ca/order/1", Failures: 2, ReverifyFailures: 1, LastCheckedAt: base, MovedAt: base.Add(time.Second),
		TransientFailures: 3, OrderStartedAt: base.Add(2 * time.Second), RenewAt: base.Add(60 * 24 * time.Hour),
		RenewalInfoAt: base.Add(6 * time.Hour), ReverifyAt: base.Add(24 * time.Hour)}
	d.Version = 99 // ignored: a new domain starts at 1

	created, err := s.CreateDomain(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.Version = 1
	if diff := cmp.Diff(want, created, equalDomains); diff != "" {
		t.Fatalf("CreateDomain returned (-want +got):\n%s", diff)
	}
	got, err := s.GetDomain(ctx, "shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, equalDomains); diff != "" {
		t.Fatalf("GetDomain (-want +got):\n%s", diff)
	}
	got.Certificate.DNSNames[0] = "mutated.example.com"
	again, _ := s.GetDomain(ctx, "shop.example.com")
	if again.Certificate.DNSNames[0] != "shop.example.com" {
		t.Fatal("a returned domain shares memory with the store")
	}
	if _, err := s.GetDomain(ctx, "missing.example.com"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("missing domain: %v, want ErrNotFound", err)
	}
}

func testHostnameHasOneOwner(t *testing.T, s domains.Store) {
	ctx := t.Context()
	mustCreate(t, s, NewDomain("shop.example.com", "acme"))
	if _, err := s.CreateDomain(ctx, NewDomain("shop.example.com", "other")); !errors.Is(err, domains.ErrAlreadyExists) {
		t.Fatalf("second tenant's claim: %v, want ErrAlreadyExists", err)
	}
	if _, err := s.CreateDomain(ctx, NewDomain("shop.example.com", "acme")); !errors.Is(err, domains.ErrAlreadyExists) {
		t.Fatalf("same tenant's second claim: %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetDomain(ctx, "shop.example.com")
	if err != nil || got.TenantID != "acme" {
		t.Fatalf("the first claim was disturbed: %+v, %v", got, err)
	}
}

func testConcurrentClaims(t *testing.T, s domains.Store) {
	const claimants = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, refused := []string{}, 0
	for i := range claimants {
		wg.Go(func() {
			tenant := fmt.Sprintf("tenant-%02d", i)
			_, err := s.CreateDomain(t.Context(), NewDomain("race.example.com", tenant))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, tenant)
			case errors.Is(err, domains.ErrAlreadyExists):
				refused++
			default:
				t.Errorf("claim by %s: %v", tenant, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 || refused != claimants-1 {
		t.Fatalf("winners %v, refused %d; want exactly one winner", winners, refused)
	}
	got, err := s.GetDomain(t.Context(), "race.example.com")
	if err != nil || got.TenantID != winners[0] {
		t.Fatalf("stored owner %q, winner %q (%v)", got.TenantID, winners[0], err)
	}
	page, _ := s.ListDomains(t.Context(), domains.ListQuery{Limit: 100})
	if len(page) != 1 {
		t.Fatalf("the index lists %d domains after the race, want 1", len(page))
	}
}

func testUpdateIsCompareAndSwap(t *testing.T, s domains.Store) {
	ctx := t.Context()
	d := mustCreate(t, s, NewDomain("shop.example.com", "acme"))

	d.Status = domains.StatusVerified
	d.LastError = ""
	updated, err := s.UpdateDomain(ctx, d)
	if err != nil || updated.Version != 2 || updated.Status != domains.StatusVerified {
		t.Fatalf("UpdateDomain = v%d %v, %v", updated.Version, updated.Status, err)
	}
	stale := d // still version 1
	stale.Status = domains.StatusFailed
	if _, err := s.UpdateDomain(ctx, stale); !errors.Is(err, domains.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	got, _ := s.GetDomain(ctx, "shop.example.com")
	if got.Status != domains.StatusVerified || got.Version != 2 {
		t.Fatalf("stale update changed the record: %v v%d", got.Status, got.Version)
	}
	moved := updated
	moved.TenantID = "thief"
	if _, err := s.UpdateDomain(ctx, moved); !errors.Is(err, domains.ErrConflict) {
		t.Fatalf("changing the tenant: %v, want ErrConflict", err)
	}
	missing := NewDomain("missing.example.com", "acme")
	missing.Version = 1
	if _, err := s.UpdateDomain(ctx, missing); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("updating a missing domain: %v, want ErrNotFound", err)
	}
}

// testConcurrentUpdates has writers increment a counter with read-modify-CAS loops; every
// increment must land exactly once.
func testConcurrentUpdates(t *testing.T, s domains.Store) {
	mustCreate(t, s, NewDomain("counter.example.com", "acme"))
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					d, err := s.GetDomain(t.Context(), "counter.example.com")
					if err != nil {
						t.Error(err)
						return
					}
					d.Progress.Failures++
					if _, err := s.UpdateDomain(t.Context(), d); err == nil {
						break
					} else if !errors.Is(err, domains.ErrConflict) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got, _ := s.GetDomain(t.Context(), "counter.example.com")
	if got.Progress.Failures != writers*each || got.Version != writers*each+1 {
		t.Fatalf("counter %d at version %d, want %d at %d", got.Progress.Failures, got.Version, writers*each, writers*each+1)
	}
}

func testDeleteIsCompareAndSwap(t *testing.T, s domains.Store) {
	ctx := t.Context()
	d := mustCreate(t, s, NewDomain("shop.example.com", "acme"))
	d.Status = domains.StatusDeleting
	d, err := s.UpdateDomain(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDomain(ctx, "shop.example.com", 1); !errors.Is(err, domains.ErrConflict) {
		t.Fatalf("delete at a stale version: %v, want ErrConflict", err)
	}
	if err := s.DeleteDomain(ctx, "shop.example.com", d.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDomain(ctx, "shop.example.com"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("deleted domain: %v", err)
	}
	if err := s.DeleteDomain(ctx, "shop.example.com", d.Version); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	for _, q := range []domains.ListQuery{{Limit: 10}, {TenantID: "acme", Limit: 10}, {Status: domains.StatusDeleting, Limit: 10}} {
		if page, _ := s.ListDomains(ctx, q); len(page) != 0 {
			t.Fatalf("deleted domain still listed by %+v", q)
		}
	}
	if due, _ := s.DueDomains(ctx, base.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("deleted domain still due: %v", due)
	}
	// The hostname can be claimed again, by anyone.
	mustCreate(t, s, NewDomain("shop.example.com", "other"))
}

func testListFiltersAndPages(t *testing.T, s domains.Store) {
	ctx := t.Context()
	want := map[string][]string{} // tenant -> hostnames
	active := []string{}
	for i := range 60 {
		tenant := []string{"acme", "beta", "gamma"}[i%3]
		host := fmt.Sprintf("h%03d.example.com", i)
		d := mustCreate(t, s, NewDomain(host, tenant))
		want[tenant] = append(want[tenant], host)
		if i%4 == 0 && tenant == "acme" {
			d.Status = domains.StatusActive
			if _, err := s.UpdateDomain(ctx, d); err != nil {
				t.Fatal(err)
			}
			active = append(active, host)
		}
	}
	all := append(append(append([]string{}, want["acme"]...), want["beta"]...), want["gamma"]...)
	sort.Strings(all)
	tests := []struct {
		name  string
		query domains.ListQuery
		want  []string
	}{
		{"all tenants", domains.ListQuery{}, all},
		{"one tenant", domains.ListQuery{TenantID: "beta"}, want["beta"]},
		{"tenant and status", domains.ListQuery{TenantID: "acme", Status: domains.StatusActive}, active},
		{"status across tenants", domains.ListQuery{Status: domains.StatusActive}, active},
		{"pending of acme", domains.ListQuery{TenantID: "acme", Status: domains.StatusPendingVerification}, without(want["acme"], active)},
		{"unknown tenant", domains.ListQuery{TenantID: "nobody"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 7, 1000} {
				var got []string
				q := tc.query
				q.Limit = limit
				for {
					page, err := s.ListDomains(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range page {
						got = append(got, d.Hostname)
					}
					if len(page) < limit {
						break
					}
					q.After = page[len(page)-1].Hostname
				}
				if !cmp.Equal(got, tc.want, cmpopts.EquateEmpty()) {
					t.Fatalf("limit %d: %s", limit, cmp.Diff(tc.want, got, cmpopts.EquateEmpty()))
				}
			}
		})
	}
}

func without(all, drop []string) []string {
	var out []string
	for _, a := range all {
		keep := true
		for _, d := range drop {
			keep = keep && a != d
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

func testDueFollowsNextAttempt(t *testing.T, s domains.Store) {
	ctx := t.Context()
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	for i, spec := range []struct {
		host string
		min  int
	}{{"c.example.com", 5}, {"a.example.com", 1}, {"b.example.com", 5}, {"d.example.com", 30}} {
		d := NewDomain(spec.host, "acme")
		d.NextAttemptAt = at(spec.min)
		d.RegisteredDomain = fmt.Sprint(i)
		mustCreate(t, s, d)
	}
	quiet := NewDomain("quiet.example.com", "acme")
	quiet.NextAttemptAt = time.Time{}
	mustCreate(t, s, quiet)

	due, err := s.DueDomains(ctx, at(5), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example.com", "b.example.com", "c.example.com"}; !cmp.Equal(due, want) {
		t.Fatalf("due at +5m: %s", cmp.Diff(want, due))
	}
	if due, _ := s.DueDomains(ctx, at(5), 2); len(due) != 2 {
		t.Fatalf("limit 2 returned %d", len(due))
	}
	// Rescheduling moves a domain out of (and back into) the index; zero removes it.
	d, _ := s.GetDomain(ctx, "a.example.com")
	d.NextAttemptAt = at(60)
	if _, err := s.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	d, _ = s.GetDomain(ctx, "b.example.com")
	d.NextAttemptAt = time.Time{}
	if _, err := s.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	d, _ = s.GetDomain(ctx, "d.example.com")
	d.NextAttemptAt = at(0)
	if _, err := s.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueDomains(ctx, at(5), 10)
	if want := []string{"d.example.com", "c.example.com"}; !cmp.Equal(due, want) {
		t.Fatalf("due after rescheduling: %s", cmp.Diff(want, due))
	}
	if due, _ := s.DueDomains(ctx, base.Add(-time.Hour), 10); len(due) != 0 {
		t.Fatalf("nothing is due before everything: %v", due)
	}
}

func testVerificationTokens(t *testing.T, s domains.Store) {
	ctx := t.Context()
	if err := s.CreateTenant(ctx, NewTenant("acme")); err != nil {
		t.Fatal(err)
	}
	first, err := s.VerificationToken(ctx, "acme", "example.com", "tok-1")
	if err != nil || first != "tok-1" {
		t.Fatalf("first token = %q, %v", first, err)
	}
	again, _ := s.VerificationToken(ctx, "acme", "example.com", "tok-2")
	if again != "tok-1" {
		t.Fatalf("second call replaced the token: %q", again)
	}
	other, _ := s.VerificationToken(ctx, "other", "example.com", "tok-3")
	if other != "tok-3" {
		t.Fatalf("another tenant got %q, want its own token", other)
	}
	elsewhere, _ := s.VerificationToken(ctx, "acme", "example.org", "tok-4")
	if elsewhere != "tok-4" {
		t.Fatalf("another registered domain got %q, want its own token", elsewhere)
	}

	var wg sync.WaitGroup
	results := make([]string, 16)
	for i := range results {
		wg.Go(func() {
			results[i], _ = s.VerificationToken(ctx, "acme", "race.example", fmt.Sprintf("cand-%d", i))
		})
	}
	wg.Wait()
	for _, r := range results {
		if r != results[0] || r == "" {
			t.Fatalf("concurrent callers got different tokens: %v", results)
		}
	}

	if err := s.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, NewTenant("acme")); err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.VerificationToken(ctx, "acme", "example.com", "tok-5")
	if fresh != "tok-5" {
		t.Fatalf("a new tenant with a deleted tenant's ID inherited its token %q", fresh)
	}
}

func testCancelledContext(t *testing.T, s domains.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.CreateDomain(ctx, NewDomain("shop.example.com", "acme")); err == nil {
		t.Fatal("CreateDomain with a cancelled context succeeded")
	}
	if _, err := s.GetDomain(t.Context(), "shop.example.com"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("a cancelled create left a domain behind: %v", err)
	}
	if _, err := s.ListDomains(ctx, domains.ListQuery{Limit: 1}); err == nil {
		t.Fatal("ListDomains with a cancelled context succeeded")
	}
	if err := s.CreateTenant(ctx, NewTenant("acme")); err == nil {
		t.Fatal("CreateTenant with a cancelled context succeeded")
	}
}
