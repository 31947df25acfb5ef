package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/domains"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
)

// TestConcurrentClaimHasOneWinner has 48 tenants claim one hostname at the same moment,
// half over gRPC and half over JSON: exactly one wins, every other gets ALREADY_EXISTS
// (HTTP 409), and the store holds the winner's claim.
func TestConcurrentClaimHasOneWinner(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	const claimants = 48
	keys := make([]string, claimants)
	for i := range keys {
		keys[i] = h.createTenant(fmt.Sprintf("claimant-%02d", i))
	}
	start := make(chan struct{})
	var mu sync.Mutex
	var winners []string
	refused := 0
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() {
			<-start
			tenant := fmt.Sprintf("claimant-%02d", i)
			var ok, exists bool
			if i%2 == 0 {
				_, err := h.domains.CreateDomain(withKey(context.Background(), key), &controlv1.CreateDomainRequest{Hostname: "race.claim-example.com"})
				ok, exists = err == nil, status.Code(err) == codes.AlreadyExists
				if !ok && !exists {
					t.Errorf("gRPC claim of %s: %v", tenant, err)
				}
			} else {
				a := h.call("POST", "/v1/domains", key, map[string]any{"hostname": "race.claim-example.com"})
				ok, exists = a.status == http.StatusOK, a.status == http.StatusConflict
				if !ok && !exists {
					t.Errorf("JSON claim of %s: HTTP %d %s", tenant, a.status, a.raw)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				winners = append(winners, tenant)
			}
			if exists {
				refused++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || refused != claimants-1 {
		t.Fatalf("winners %v and %d refusals; want one winner and %d refusals", winners, refused, claimants-1)
	}
	d, err := h.store.GetDomain(t.Context(), "race.claim-example.com")
	if err != nil || d.TenantID != winners[0] {
		t.Fatalf("stored owner %q (%v), winner %s", d.TenantID, err, winners[0])
	}
	page, _ := h.store.ListDomains(t.Context(), domains.ListQuery{Limit: 1000})
	if len(page) != 1 {
		t.Fatalf("%d domains stored after the race, want 1", len(page))
	}
}

// TestBadInputNamesTheField sends bad requests through the JSON API: each gets HTTP 400
// with a field violation naming the field and the rule that failed.
func TestBadInputNamesTheField(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	key := h.createTenant("acme")
	h.createDomain(key, "shop.acme-example.com")
	long := strings.Repeat("a", 64)
	tests := []struct {
		name      string
		method    string
		path      string
		key       string
		body      any
		wantField string
		wantRule  string
	}{
		{"empty hostname", "POST", "/v1/domains", key, map[string]any{"hostname": ""}, "hostname", "empty"},
		{"IPv4 literal", "POST", "/v1/domains", key, map[string]any{"hostname": "192.0.2.1"}, "hostname", "ip-literal"},
		{"IPv4 in hex", "POST", "/v1/domains", key, map[string]any{"hostname": "shop.0x7f"}, "hostname", "ip-literal"},
		{"port", "POST", "/v1/domains", key, map[string]any{"hostname": "shop.example.com:443"}, "hostname", "port"},
		{"scheme", "POST", "/v1/domains", key, map[string]any{"hostname": "https://shop.example.com"}, "hostname", "scheme"},
		{"path", "POST", "/v1/domains", key, map[string]any{"hostname": "shop.example.com/x"}, "hostname", "path"},
		{"user info", "POST", "/v1/domains", key, map[string]any{"hostname": "me@shop.example.com"}, "hostname", "userinfo"},
		{"public suffix", "POST", "/v1/domains", key, map[string]any{"hostname": "co.uk"}, "hostname", "public-suffix"},
		{"private public suffix", "POST", "/v1/domains", key, map[string]any{"hostname": "github.io"}, "hostname", "public-suffix"},
		{"single label", "POST", "/v1/domains", key, map[string]any{"hostname": "intranet"}, "hostname", "single-label"},
		{"unknown TLD", "POST", "/v1/domains", key, map[string]any{"hostname": "shop.invalidtld"}, "hostname", "unknown-tld"},
		{"label too long", "POST", "/v1/domains", key, map[string]any{"hostname": long + ".example.com"}, "hostname", "label-too-long"},
		{"underscore", "POST", "/v1/domains", key, map[string]any{"hostname": "my_shop.example.com"}, "hostname", "invalid-character"},
		{"leading hyphen", "POST", "/v1/domains", key, map[string]any{"hostname": "-shop.example.com"}, "hostname", "hyphen"},
		{"wildcard in the middle", "POST", "/v1/domains", key, map[string]any{"hostname": "a.*.example.com"}, "hostname", "wildcard-form"},
		{"wildcard with include_subdomains", "POST", "/v1/domains", key, map[string]any{"hostname": "*.example.com", "include_subdomains": true}, "include_subdomains", "wildcard-hostname"},
		{"upstream not allowed", "POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com", "upstream": "203.0.113.7:80"}, "upstream", "not-allowed"},
		{"upstream loopback", "POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com", "upstream": "127.0.0.1:8080"}, "upstream", "forbidden-address"},
		{"upstream metadata", "POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com", "upstream": "169.254.169.254:80"}, "upstream", "forbidden-address"},
		{"upstream localhost", "POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com", "upstream": "localhost:8080"}, "upstream", "forbidden-address"},
		{"upstream without port", "POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com", "upstream": "backend.internal"}, "upstream", "host-port"},
		{"upstream on update", "PATCH", "/v1/domains/shop.acme-example.com", key, map[string]any{"upstream": "[::1]:80"}, "upstream", "forbidden-address"},
		{"tenant names another tenant", "POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com", "tenant_id": "beta"}, "tenant_id", "admin-only"},
		{"admin create without tenant", "POST", "/v1/domains", testAdminKey, map[string]any{"hostname": "a.example.com"}, "tenant_id", "required"},
		{"hostname in the path", "GET", "/v1/domains/" + url.PathEscape("shop.example.com:8443x"), key, nil, "hostname", "invalid-character"},
		{"page size too large", "GET", "/v1/domains?page_size=1001", key, nil, "page_size", "range"},
		{"negative page size", "GET", "/v1/domains?page_size=-1", key, nil, "page_size", "range"},
		{"forged page token", "GET", "/v1/domains?page_token=bm90LWEtdG9rZW4", key, nil, "page_token", "page-token"},
		{"unknown status name", "GET", "/v1/domains?status=DOMAIN_STATUS_HAPPY", key, nil, "status", "malformed"},
		{"wrong JSON type", "POST", "/v1/domains", key, `{"hostname": 5}`, "hostname", "malformed"},
		{"unknown JSON field", "POST", "/v1/domains", key, `{"hostname": "a.example.com", "owner": "x"}`, "owner", "malformed"},
		{"not JSON", "POST", "/v1/domains", key, `hostname=a.example.com`, "body", "malformed"},
		{"tenant id form", "POST", "/v1/tenants", testAdminKey, map[string]any{"tenant_id": "Acme Corp"}, "tenant_id", "tenant-id-form"},
		{"tenant id too long", "POST", "/v1/tenants", testAdminKey, map[string]any{"tenant_id": long}, "tenant_id", "tenant-id-form"},
		{"display name control character", "POST", "/v1/tenants", testAdminKey, map[string]any{"display_name": "a\u0007b"}, "display_name", "control-character"},
		{"display name too long", "POST", "/v1/tenants", testAdminKey, map[string]any{"display_name": strings.Repeat("x", 201)}, "display_name", "too-long"},
		{"tenants page size", "GET", "/v1/tenants?page_size=5000", testAdminKey, nil, "page_size", "range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := h.call(tc.method, tc.path, tc.key, tc.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400: %s", a.status, a.raw)
			}
			if field, rule := a.violation(); field != tc.wantField || rule != tc.wantRule {
				t.Fatalf("violation field %q rule %q, want %q %q: %s", field, rule, tc.wantField, tc.wantRule, a.raw)
			}
			if msg, _ := a.body["message"].(string); !strings.Contains(msg, tc.wantField) {
				t.Fatalf("message %q does not name the field %s", msg, tc.wantField)
			}
		})
	}
	t.Run("unknown status number over gRPC", func(t *testing.T) {
		_, err := h.domains.ListDomains(withKey(t.Context(), key), &controlv1.ListDomainsRequest{Status: 42})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "status") {
			t.Fatalf("status 42: %v, want INVALID_ARGUMENT naming status", err)
		}
	})
	// Nothing the bad requests said was stored, and what was stored is intact.
	page, err := h.store.ListDomains(t.Context(), domains.ListQuery{Limit: 100})
	if err != nil || len(page) != 1 || page[0].Hostname != "shop.acme-example.com" || page[0].Upstream != "" {
		t.Fatalf("store after bad input: %+v, %v", page, err)
	}
}

// TestPaginationOver10000Domains stores 10,000 domains of one tenant (and some of
// another, which must never show), then pages through them over JSON and gRPC: each
// exactly once, in hostname order, with opaque tokens; the status filter returns exactly
// the domains in that status.
func TestPaginationOver10000Domains(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	key := h.createTenant("bulk")
	h.createTenant("neighbour")
	const total = 10000
	var want, wantActive []string
	var g errgroup.Group
	g.SetLimit(16)
	for i := range total + 500 {
		tenant, host := "bulk", fmt.Sprintf("h%05d.bulk-example.com", i)
		if i >= total {
			tenant, host = "neighbour", fmt.Sprintf("n%05d.bulk-example.com", i)
		} else {
			want = append(want, host)
		}
		st := domains.StatusPendingVerification
		if i%7 == 0 {
			st = domains.StatusActive
			if tenant == "bulk" {
				wantActive = append(wantActive, host)
			}
		}
		g.Go(func() error {
			_, err := h.store.CreateDomain(context.Background(), domains.Domain{Hostname: host, TenantID: tenant, Kind: domains.KindExact,
				RegisteredDomain: "bulk-example.com", Status: st, VerificationToken: "portico-verify=x", RedirectHTTPS: true})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(wantActive)

	t.Run("JSON, page size 1000", func(t *testing.T) {
		got := pageJSON(t, h, key, "page_size=1000")
		assertExactlyOnce(t, got, want)
	})
	t.Run("gRPC, page size 999", func(t *testing.T) {
		var got []string
		token := ""
		pages := 0
		for {
			resp, err := h.domains.ListDomains(withKey(t.Context(), key), &controlv1.ListDomainsRequest{PageSize: 999, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, d := range resp.GetDomains() {
				got = append(got, d.GetHostname())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if pages != (total+998)/999 {
			t.Fatalf("%d pages, want %d (no trailing empty page)", pages, (total+998)/999)
		}
		assertExactlyOnce(t, got, want)
	})
	t.Run("JSON, status filter", func(t *testing.T) {
		got := pageJSON(t, h, key, "page_size=250&status=DOMAIN_STATUS_ACTIVE")
		assertExactlyOnce(t, got, wantActive)
	})
	t.Run("default page size is 100", func(t *testing.T) {
		a := h.call("GET", "/v1/domains", key, nil)
		if n := len(a.body["domains"].([]any)); n != 100 || a.body["next_page_token"] == "" {
			t.Fatalf("first page of %d, token %v", n, a.body["next_page_token"])
		}
	})
	t.Run("a token is bound to its filter", func(t *testing.T) {
		a := h.call("GET", "/v1/domains?page_size=10", key, nil)
		tok := a.body["next_page_token"].(string)
		b := h.call("GET", "/v1/domains?page_size=10&status=DOMAIN_STATUS_ACTIVE&page_token="+url.QueryEscape(tok), key, nil)
		if field, _ := b.violation(); b.status != http.StatusBadRequest || field != "page_token" {
			t.Fatalf("token reused with another filter: HTTP %d %s", b.status, b.raw)
		}
	})
}

func pageJSON(t *testing.T, h *harness, key, query string) []string {
	t.Helper()
	var got []string
	token := ""
	for range 1000 {
		q := query
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		a := h.call("GET", "/v1/domains?"+q, key, nil)
		if a.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", a.status, a.raw)
		}
		for _, d := range a.body["domains"].([]any) {
			got = append(got, d.(map[string]any)["hostname"].(string))
		}
		if token, _ = a.body["next_page_token"].(string); token == "" {
			return got
		}
	}
	t.Fatal("pagination did not end")
	return nil
}

func assertExactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d domains over all pages, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for i, h := range got {
		if seen[h] {
			t.Fatalf("%s listed twice", h)
		}
		seen[h] = true
		if h != want[i] {
			t.Fatalf("position %d holds %s, want %s (hostname order)", i, h, want[i])
		}
	}
}

// TestNotaryDownLosesNothing runs controlapi with the notary unreachable: a new domain is
// stored and listed by DueDomains (the durable hand-off a notary replica picks up), and
// verify-now on a domain the notary had scheduled for later makes it due again.
func TestNotaryDownLosesNothing(t *testing.T) {
	h := startControlAPI(t, harnessOptions{}) // nothing listens at the notary address
	key := h.createTenant("acme")

	before := time.Now()
	d := h.createDomain(key, "shop.acme-example.com")
	if d.GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_PENDING_VERIFICATION {
		t.Fatalf("status %v, want PENDING_VERIFICATION", d.GetStatus())
	}
	if !h.dueNow("shop.acme-example.com") {
		t.Fatal("the new domain is not due: a notary coming back would never see it")
	}
	stored, err := h.store.GetDomain(t.Context(), "shop.acme-example.com")
	if err != nil || stored.NextAttemptAt.Before(before.Add(-time.Second)) || stored.NextAttemptAt.After(time.Now()) {
		t.Fatalf("stored next attempt %v (%v), want the creation time", stored.NextAttemptAt, err)
	}

	// The notary had looked and scheduled the next check an hour out.
	stored.NextAttemptAt = time.Now().Add(time.Hour)
	if _, err := h.store.UpdateDomain(t.Context(), stored); err != nil {
		t.Fatal(err)
	}
	if h.dueNow("shop.acme-example.com") {
		t.Fatal("setup: the domain should not be due")
	}
	a := h.call("POST", "/v1/domains/shop.acme-example.com:verify", key, map[string]any{})
	if a.status != http.StatusOK {
		t.Fatalf("verify-now with the notary down: HTTP %d %s", a.status, a.raw)
	}
	dom := a.body["domain"].(map[string]any)
	if dom["status"] != "DOMAIN_STATUS_PENDING_VERIFICATION" {
		t.Fatalf("verify-now answered %v", dom["status"])
	}
	next, err := time.Parse(time.RFC3339Nano, dom["next_attempt_time"].(string))
	if err != nil || next.After(time.Now()) {
		t.Fatalf("verify-now answered next_attempt_time %v (%v), want now", dom["next_attempt_time"], err)
	}
	if !h.dueNow("shop.acme-example.com") {
		t.Fatal("verify-now with the notary down did not make the domain due")
	}
}
