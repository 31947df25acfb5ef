package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/portico-dev/portico/pkg/domains"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
)

// TestCreateAnswersEverythingToPublish: one answer carries the ownership TXT record
// (random, at least 128 bits, shared by a tenant's names under one registered domain,
// different between tenants) and the routing records.
func TestCreateAnswersEverythingToPublish(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	acme := h.createTenant("acme")
	beta := h.createTenant("beta")

	shop := h.createDomain(acme, "Shop.Example.COM.")
	if shop.GetHostname() != "shop.example.com" || shop.GetRegisteredDomain() != "example.com" || !shop.GetRedirectHttps() ||
		shop.GetKind() != controlv1.DomainKind_DOMAIN_KIND_EXACT {
		t.Fatalf("created %+v", shop)
	}
	records := map[string]*controlv1.DnsRecord{}
	for _, r := range shop.GetDnsRecords() {
		records[r.GetType()+" "+r.GetName()] = r
	}
	txt := records["TXT _verify.example.com"]
	token, ok := strings.CutPrefix(txt.GetValue(), "portico-verify=")
	if !ok || len(token)*5 < 128 {
		t.Fatalf("TXT record %v: want portico-verify= and at least 128 bits", txt)
	}
	if cname := records["CNAME shop.example.com"]; cname.GetValue() != "edge.portico.example.net" {
		t.Fatalf("routing record of a subdomain: %v, want the CNAME to the edge", shop.GetDnsRecords())
	}

	blog := h.createDomain(acme, "blog.example.com")
	if got := blog.GetDnsRecords()[0].GetValue(); got != txt.GetValue() {
		t.Fatalf("a second name under example.com got TXT %q, want the tenant's %q", got, txt.GetValue())
	}
	other := h.createDomain(beta, "www.example.com")
	if got := other.GetDnsRecords()[0].GetValue(); got == txt.GetValue() {
		t.Fatal("two tenants got the same TXT value for one registered domain")
	}

	apex := h.createDomain(acme, "bücher.de")
	var apexTypes []string
	for _, r := range apex.GetDnsRecords() {
		apexTypes = append(apexTypes, r.GetType()+" "+r.GetName()+" "+r.GetValue())
	}
	want := []string{"TXT _verify.xn--bcher-kva.de " + apex.GetDnsRecords()[0].GetValue(),
		"A xn--bcher-kva.de 192.0.2.10", "AAAA xn--bcher-kva.de 2001:db8::10"}
	if !slices.Equal(apexTypes, want) {
		t.Fatalf("records of an apex (no CNAME possible there):\n got %q\nwant %q", apexTypes, want)
	}

	noRedirect, err := h.domains.CreateDomain(withKey(t.Context(), acme), &controlv1.CreateDomainRequest{
		Hostname: "api.example.com", RedirectHttps: proto.Bool(false), Upstream: "10.20.1.2:8443"})
	if err != nil || noRedirect.GetDomain().GetRedirectHttps() || noRedirect.GetDomain().GetUpstream() != "10.20.1.2:8443" {
		t.Fatalf("settings at creation: %+v, %v", noRedirect.GetDomain(), err)
	}
	stored, err := h.store.GetDomain(t.Context(), "api.example.com")
	if err != nil || stored.RedirectHTTPS || stored.Upstream != "10.20.1.2:8443" || stored.VerifyDeadline.Sub(stored.CreatedAt) != 7*24*time.Hour {
		t.Fatalf("stored %+v, %v", stored, err)
	}
}

// TestWildcardsNeedADelegationZone: without -delegation-zone, wildcard kinds are refused
// with FAILED_PRECONDITION; with one, they are stored with the delegation record.
func TestWildcardsNeedADelegationZone(t *testing.T) {
	t.Run("not configured", func(t *testing.T) {
		h := startControlAPI(t, harnessOptions{})
		key := h.createTenant("acme")
		for _, req := range []*controlv1.CreateDomainRequest{{Hostname: "*.example.com"}, {Hostname: "example.com", IncludeSubdomains: true}} {
			_, err := h.domains.CreateDomain(withKey(t.Context(), key), req)
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "delegation") {
				t.Fatalf("%v: %v, want FAILED_PRECONDITION about the delegation", req, err)
			}
		}
	})
	t.Run("configured", func(t *testing.T) {
		h := startControlAPI(t, harnessOptions{args: []string{"-delegation-zone", "acme-challenge.portico.example.net"}})
		key := h.createTenant("acme")
		d := h.createDomain(key, "*.example.com")
		if d.GetKind() != controlv1.DomainKind_DOMAIN_KIND_WILDCARD {
			t.Fatalf("kind %v", d.GetKind())
		}
		var delegation *controlv1.DnsRecord
		for _, r := range d.GetDnsRecords() {
			if r.GetName() == "_acme-challenge.example.com" {
				delegation = r
			}
		}
		if delegation == nil || delegation.GetType() != "CNAME" || !strings.HasSuffix(delegation.GetValue(), ".acme-challenge.portico.example.net") {
			t.Fatalf("records %v: want the _acme-challenge CNAME into the delegation zone", d.GetDnsRecords())
		}
	})
}

// TestNotaryAnswersAtCreate: when the notary settles a new domain at once (a wildcard
// of the same tenant covers it), the answer is the record the notary wrote.
func TestNotaryAnswersAtCreate(t *testing.T) {
	notary := &fakeNotary{}
	h := startControlAPI(t, harnessOptions{notary: serveFake(t, &notaryServiceDesc, notary)})
	notary.setHooks(func(ctx context.Context, host string) error {
		d, err := h.store.GetDomain(ctx, host)
		if err != nil {
			return err
		}
		d.Status, d.CoveredBy, d.NextAttemptAt = domains.StatusActive, "*.example.com", time.Time{}
		_, err = h.store.UpdateDomain(ctx, d)
		return err
	}, nil)
	key := h.createTenant("acme")
	d := h.createDomain(key, "shop.example.com")
	if d.GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_ACTIVE || d.GetCoveredBy() != "*.example.com" {
		t.Fatalf("answer %v covered by %q, want ACTIVE covered by *.example.com", d.GetStatus(), d.GetCoveredBy())
	}
	if enqueued, _ := notary.calls(); !slices.Equal(enqueued, []string{"shop.example.com"}) {
		t.Fatalf("notary got %v", enqueued)
	}
}

// TestVerifyNowAsksTheNotary: with the notary up, verify-now calls it and answers with
// the state it left.
func TestVerifyNowAsksTheNotary(t *testing.T) {
	notary := &fakeNotary{}
	h := startControlAPI(t, harnessOptions{notary: serveFake(t, &notaryServiceDesc, notary)})
	notary.setHooks(nil, func(ctx context.Context, host string) error {
		d, err := h.store.GetDomain(ctx, host)
		if err != nil {
			return err
		}
		d.Status, d.VerifiedAt = domains.StatusVerified, time.Now()
		_, err = h.store.UpdateDomain(ctx, d)
		return err
	})
	key := h.createTenant("acme")
	h.createDomain(key, "shop.example.com")
	resp, err := h.domains.VerifyDomain(withKey(t.Context(), key), &controlv1.VerifyDomainRequest{Hostname: "SHOP.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDomain().GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_VERIFIED || resp.GetDomain().GetVerifyTime() == nil {
		t.Fatalf("answer %v, want VERIFIED with a verify_time", resp.GetDomain())
	}
	if _, verified := notary.calls(); !slices.Equal(verified, []string{"shop.example.com"}) {
		t.Fatalf("notary got %v", verified)
	}
}

// makeActive turns a stored domain into a served one with its own certificate.
func makeActive(t *testing.T, h *harness, host string) domains.Domain {
	t.Helper()
	d, err := h.store.GetDomain(t.Context(), host)
	if err != nil {
		t.Fatal(err)
	}
	d.Status, d.NextAttemptAt = domains.StatusActive, time.Now().Add(24*time.Hour)
	d.Certificate = domains.CertificateInfo{Issuer: "CN=Test CA", Serial: "0a", NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour), DNSNames: []string{host}}
	if d, err = h.store.UpdateDomain(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUpdatePushesTheRoute: a served domain's new settings reach certstore; with
// certstore down the domain is made due so the notary re-syncs the route.
func TestUpdatePushesTheRoute(t *testing.T) {
	t.Run("certstore up", func(t *testing.T) {
		certstore := &fakeCertstore{}
		h := startControlAPI(t, harnessOptions{certstore: serveFake(t, &certWriteServiceDesc, certstore)})
		key := h.createTenant("acme")
		h.createDomain(key, "pending.example.com")
		h.createDomain(key, "shop.example.com")
		makeActive(t, h, "shop.example.com")

		a := h.call("PATCH", "/v1/domains/shop.example.com", key, map[string]any{"upstream": "backend.internal:8080", "redirect_https": false})
		if a.status != http.StatusOK {
			t.Fatalf("HTTP %d %s", a.status, a.raw)
		}
		route, _ := certstore.route("shop.example.com")
		if route.GetUpstream() != "backend.internal:8080" || route.GetRedirectHttps() || route.GetTenantId() != "acme" {
			t.Fatalf("certstore route %v", route)
		}
		if h.dueNow("shop.example.com") {
			t.Fatal("a route pushed successfully should not make the domain due")
		}
		// A domain not served yet: only the record changes; the notary sets the route
		// when it makes the domain ACTIVE.
		if _, err := h.domains.UpdateDomain(withKey(t.Context(), key), &controlv1.UpdateDomainRequest{Hostname: "pending.example.com", Upstream: proto.String("10.20.0.9:80")}); err != nil {
			t.Fatal(err)
		}
		if _, pushed := certstore.route("pending.example.com"); pushed {
			t.Fatal("a route was pushed for a domain that is not served")
		}
		d, _ := h.store.GetDomain(t.Context(), "pending.example.com")
		if d.Upstream != "10.20.0.9:80" {
			t.Fatalf("stored upstream %q", d.Upstream)
		}
		// Restoring the default upstream with the empty string.
		resp, err := h.domains.UpdateDomain(withKey(t.Context(), key), &controlv1.UpdateDomainRequest{Hostname: "shop.example.com", Upstream: proto.String("")})
		route, _ = certstore.route("shop.example.com")
		if err != nil || resp.GetDomain().GetUpstream() != "" || route.GetUpstream() != "" {
			t.Fatalf("restoring the default upstream: %v, %v", resp.GetDomain(), err)
		}
	})
	t.Run("certstore down", func(t *testing.T) {
		h := startControlAPI(t, harnessOptions{})
		key := h.createTenant("acme")
		h.createDomain(key, "shop.example.com")
		makeActive(t, h, "shop.example.com")
		resp, err := h.domains.UpdateDomain(withKey(t.Context(), key), &controlv1.UpdateDomainRequest{Hostname: "shop.example.com", RedirectHttps: proto.Bool(false)})
		if err != nil || resp.GetDomain().GetRedirectHttps() {
			t.Fatalf("update with certstore down: %v, %v", resp.GetDomain(), err)
		}
		if !h.dueNow("shop.example.com") {
			t.Fatal("certstore down: the domain is not due, so the notary would never re-sync its route")
		}
	})
}

// TestDeleteLeavesTheEdge: deleting a served domain removes its route and certificate
// from certstore and the record; with certstore down the record stays DELETING and due,
// for the notary to finish, and the name cannot be claimed meanwhile.
func TestDeleteLeavesTheEdge(t *testing.T) {
	t.Run("certstore up", func(t *testing.T) {
		certstore := &fakeCertstore{}
		h := startControlAPI(t, harnessOptions{certstore: serveFake(t, &certWriteServiceDesc, certstore)})
		key := h.createTenant("acme")
		h.createDomain(key, "shop.example.com")
		active := makeActive(t, h, "shop.example.com")
		h.createDomain(key, "covered.example.com")
		covered, _ := h.store.GetDomain(t.Context(), "covered.example.com")
		covered.Status, covered.CoveredBy = domains.StatusActive, "*.example.com"
		covered.Certificate = domains.CertificateInfo{Serial: "0b", NotAfter: time.Now().Add(time.Hour)}
		if _, err := h.store.UpdateDomain(t.Context(), covered); err != nil {
			t.Fatal(err)
		}

		if a := h.call("DELETE", "/v1/domains/shop.example.com", key, nil); a.status != http.StatusOK {
			t.Fatalf("HTTP %d %s", a.status, a.raw)
		}
		if _, err := h.domains.DeleteDomain(withKey(t.Context(), key), &controlv1.DeleteDomainRequest{Hostname: "covered.example.com"}); err != nil {
			t.Fatal(err)
		}
		if got := certstore.routesDeleted(); !slices.Equal(got, []string{"shop.example.com", "covered.example.com"}) {
			t.Fatalf("routes deleted: %v", got)
		}
		token, ok := certstore.certificateDeleted("shop.example.com")
		if !ok || token <= active.FencingToken() {
			t.Fatalf("certificate deletion %v (fencing token %d), want one above the token of the version before it, %d", ok, token, active.FencingToken())
		}
		if _, ok := certstore.certificateDeleted("covered.example.com"); ok {
			t.Fatal("the covering wildcard's certificate was deleted with a covered domain")
		}
		for _, host := range []string{"shop.example.com", "covered.example.com"} {
			if _, err := h.store.GetDomain(t.Context(), host); err == nil {
				t.Fatalf("%s still stored", host)
			}
		}
		if a := h.call("GET", "/v1/domains/shop.example.com", key, nil); a.status != http.StatusNotFound {
			t.Fatalf("GET after delete: HTTP %d", a.status)
		}
	})
	t.Run("certstore down", func(t *testing.T) {
		h := startControlAPI(t, harnessOptions{})
		key := h.createTenant("acme")
		other := h.createTenant("other")
		h.createDomain(key, "shop.example.com")
		makeActive(t, h, "shop.example.com")
		if _, err := h.domains.DeleteDomain(withKey(t.Context(), key), &controlv1.DeleteDomainRequest{Hostname: "shop.example.com"}); err != nil {
			t.Fatalf("delete with certstore down: %v (the deletion is durable, so it succeeds)", err)
		}
		d, err := h.store.GetDomain(t.Context(), "shop.example.com")
		if err != nil || d.Status != domains.StatusDeleting {
			t.Fatalf("stored %v, %v; want DELETING", d.Status, err)
		}
		if !h.dueNow("shop.example.com") {
			t.Fatal("the DELETING domain is not due for the notary")
		}
		if _, err := h.domains.CreateDomain(withKey(t.Context(), other), &controlv1.CreateDomainRequest{Hostname: "shop.example.com"}); status.Code(err) != codes.AlreadyExists {
			t.Fatalf("claiming a name still leaving the edge: %v, want ALREADY_EXISTS", err)
		}
		if _, err := h.domains.VerifyDomain(withKey(t.Context(), key), &controlv1.VerifyDomainRequest{Hostname: "shop.example.com"}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("verify-now of a DELETING domain: %v", err)
		}
	})
}

// TestTenantLifecycle: create (the key once, an ID generated when none is given), get,
// list in pages, rotate (the old key stops at once), delete (the key stops, the domains
// leave the edge).
func TestTenantLifecycle(t *testing.T) {
	certstore := &fakeCertstore{}
	h := startControlAPI(t, harnessOptions{certstore: serveFake(t, &certWriteServiceDesc, certstore)})
	admin := withKey(t.Context(), testAdminKey)

	generated, err := h.tenants.CreateTenant(admin, &controlv1.CreateTenantRequest{DisplayName: "Generated Ltd"})
	if err != nil || generated.GetTenant().GetId() == "" || !strings.HasPrefix(generated.GetApiKey(), "ptk_") {
		t.Fatalf("CreateTenant without an ID: %v, %v", generated, err)
	}
	if _, err := h.tenants.CreateTenant(admin, &controlv1.CreateTenantRequest{TenantId: generated.GetTenant().GetId()}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate tenant: %v", err)
	}
	stored, _ := h.store.GetTenant(t.Context(), generated.GetTenant().GetId())
	if strings.Contains(stored.KeyHash, generated.GetApiKey()) || len(stored.KeyHash) != 64 {
		t.Fatalf("stored key hash %q: want a SHA-256, never the key", stored.KeyHash)
	}
	got, err := h.tenants.GetTenant(admin, &controlv1.GetTenantRequest{TenantId: generated.GetTenant().GetId()})
	if err != nil || got.GetTenant().GetDisplayName() != "Generated Ltd" {
		t.Fatalf("GetTenant: %v, %v", got, err)
	}

	for _, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		h.createTenant(id)
	}
	var ids []string
	token := ""
	for {
		page, err := h.tenants.ListTenants(admin, &controlv1.ListTenantsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range page.GetTenants() {
			ids = append(ids, tn.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{"t1", "t2", "t3", "t4", "t5"}; len(ids) != 6 || !slices.Equal(ids[:5], want) {
		t.Fatalf("tenants over pages: %v", ids)
	}

	oldKey := h.createTenant("acme")
	h.createDomain(oldKey, "shop.example.com")
	rotated, err := h.tenants.RotateTenantKey(admin, &controlv1.RotateTenantKeyRequest{TenantId: "acme"})
	if err != nil || rotated.GetApiKey() == oldKey {
		t.Fatalf("RotateTenantKey: %v, %v", rotated, err)
	}
	if a := h.call("GET", "/v1/domains/shop.example.com", oldKey, nil); a.status != http.StatusUnauthorized {
		t.Fatalf("old key after rotation: HTTP %d", a.status)
	}
	if a := h.call("GET", "/v1/domains/shop.example.com", rotated.GetApiKey(), nil); a.status != http.StatusOK {
		t.Fatalf("new key after rotation: HTTP %d %s", a.status, a.raw)
	}

	newKey := rotated.GetApiKey()
	h.createDomain(newKey, "blog.example.com")
	if a := h.call("DELETE", "/v1/tenants/acme", testAdminKey, nil); a.status != http.StatusOK {
		t.Fatalf("DeleteTenant: HTTP %d %s", a.status, a.raw)
	}
	if a := h.call("GET", "/v1/domains", newKey, nil); a.status != http.StatusUnauthorized {
		t.Fatalf("a deleted tenant's key: HTTP %d", a.status)
	}
	if _, err := h.tenants.GetTenant(admin, &controlv1.GetTenantRequest{TenantId: "acme"}); status.Code(err) != codes.NotFound {
		t.Fatalf("deleted tenant: %v", err)
	}
	left, _ := h.store.ListDomains(t.Context(), domains.ListQuery{TenantID: "acme", Limit: 10})
	if len(left) != 0 {
		t.Fatalf("domains left after the tenant was deleted: %v", left)
	}
	removed := certstore.routesDeleted()
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"blog.example.com", "shop.example.com"}) {
		t.Fatalf("routes removed: %v", removed)
	}
	if _, err := h.tenants.DeleteTenant(admin, &controlv1.DeleteTenantRequest{TenantId: "acme"}); status.Code(err) != codes.NotFound {
		t.Fatalf("second delete: %v", err)
	}
}

// TestDeleteTenantWithCertstoreDown leaves the tenant's domains DELETING and due.
func TestDeleteTenantWithCertstoreDown(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	key := h.createTenant("acme")
	for _, host := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		h.createDomain(key, host)
	}
	if _, err := h.tenants.DeleteTenant(withKey(t.Context(), testAdminKey), &controlv1.DeleteTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		d, err := h.store.GetDomain(t.Context(), host)
		if err != nil || d.Status != domains.StatusDeleting || !h.dueNow(host) {
			t.Fatalf("%s: %v due=%v (%v); want DELETING and due", host, d.Status, h.dueNow(host), err)
		}
	}
}

// TestRateLimits: a tenant over its creation or verify-now rate gets RESOURCE_EXHAUSTED
// with a RetryInfo hint, HTTP 429 with Retry-After; other tenants and the admin are not
// held back by it.
func TestRateLimits(t *testing.T) {
	h := startControlAPI(t, harnessOptions{args: []string{"-create-rate", "3/1h", "-verify-rate", "2/1h"}})
	acme := h.createTenant("acme")
	beta := h.createTenant("beta")
	for _, host := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		h.createDomain(acme, host)
	}
	_, err := h.domains.CreateDomain(withKey(t.Context(), acme), &controlv1.CreateDomainRequest{Hostname: "d.example.com"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("fourth creation: %v, want RESOURCE_EXHAUSTED", err)
	}
	var hint time.Duration
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			hint = ri.GetRetryDelay().AsDuration()
		}
	}
	if hint < 19*time.Minute || hint > 20*time.Minute {
		t.Fatalf("retry hint %v, want about 20m (3 per hour)", hint)
	}
	a := h.call("POST", "/v1/domains", acme, map[string]any{"hostname": "d.example.com"})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("JSON: HTTP %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if _, err := h.store.GetDomain(t.Context(), "d.example.com"); err == nil {
		t.Fatal("a refused creation was stored")
	}
	h.createDomain(beta, "e.example.com")
	if _, err := h.domains.CreateDomain(withKey(t.Context(), testAdminKey), &controlv1.CreateDomainRequest{Hostname: "f.example.com", TenantId: "acme"}); err != nil {
		t.Fatalf("admin creation for a limited tenant: %v", err)
	}

	for range 2 {
		if a := h.call("POST", "/v1/domains/a.example.com:verify", acme, map[string]any{}); a.status != http.StatusOK {
			t.Fatalf("verify-now within the limit: HTTP %d", a.status)
		}
	}
	if a := h.call("POST", "/v1/domains/a.example.com:verify", acme, map[string]any{}); a.status != http.StatusTooManyRequests {
		t.Fatalf("third verify-now: HTTP %d, want 429", a.status)
	}
}

// TestRequestSizeLimits: bodies beyond -max-request-bytes get 413 on JSON and
// RESOURCE_EXHAUSTED on gRPC, before anything is decoded.
func TestRequestSizeLimits(t *testing.T) {
	h := startControlAPI(t, harnessOptions{args: []string{"-max-request-bytes", "2048"}})
	key := h.createTenant("acme")
	big := `{"hostname": "a.example.com", "upstream": "` + strings.Repeat("x", 4096) + `"}`
	if a := h.call("POST", "/v1/domains", key, big); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("JSON body of %d bytes: HTTP %d %s", len(big), a.status, a.raw)
	}
	_, err := h.domains.CreateDomain(withKey(t.Context(), key), &controlv1.CreateDomainRequest{Hostname: "a.example.com", Upstream: strings.Repeat("x", 4096)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC message over the cap: %v", err)
	}
	if a := h.call("POST", "/v1/domains", key, map[string]any{"hostname": "a.example.com"}); a.status != http.StatusOK {
		t.Fatalf("a small body: HTTP %d %s", a.status, a.raw)
	}
}

// TestCORS: preflights from a configured origin are answered; other origins get no CORS
// headers.
func TestCORS(t *testing.T) {
	h := startControlAPI(t, harnessOptions{args: []string{"-cors-allowed-origins", "https://dash.example.com"}})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, "http://"+h.httpAddr+"/v1/domains", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := preflight("https://dash.example.com")
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" ||
		!strings.Contains(strings.ToLower(ok.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight from the dashboard: %d %v", ok.StatusCode, ok.Header)
	}
	if other := preflight("https://evil.example.net"); other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", other.Header)
	}
}

// TestOpenAPIDocument is served at /openapi.json without a key.
func TestOpenAPIDocument(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	a := h.call("GET", "/openapi.json", "", nil)
	if a.status != http.StatusOK || a.body["swagger"] != "2.0" || a.body["paths"].(map[string]any)["/v1/domains"] == nil {
		t.Fatalf("HTTP %d, %.200s", a.status, a.raw)
	}
}

// TestDeletingAWildcardWakesWhatItCovered: the subdomains a deleted wildcard served are
// made due at once, so the notary gets them certificates of their own without waiting
// for their next scheduled check (up to a day away).
func TestDeletingAWildcardWakesWhatItCovered(t *testing.T) {
	certstore := &fakeCertstore{}
	h := startControlAPI(t, harnessOptions{
		certstore: serveFake(t, &certWriteServiceDesc, certstore),
		args:      []string{"-delegation-zone", "acme-delegation.example.net"},
	})
	key := h.createTenant("acme")
	h.createDomain(key, "*.example.com")
	makeActive(t, h, "*.example.com")
	for _, host := range []string{"a.example.com", "b.example.com", "own.example.com"} {
		h.createDomain(key, host)
		d := makeActive(t, h, host) // due in a day
		if host != "own.example.com" {
			d.CoveredBy = "*.example.com"
			if _, err := h.store.UpdateDomain(t.Context(), d); err != nil {
				t.Fatal(err)
			}
		}
	}

	if a := h.call("DELETE", "/v1/domains/*.example.com", key, nil); a.status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.status, a.raw)
	}
	if _, err := h.store.GetDomain(t.Context(), "*.example.com"); !errors.Is(err, domains.ErrNotFound) {
		t.Fatalf("the wildcard was not removed: %v", err)
	}
	for host, want := range map[string]bool{"a.example.com": true, "b.example.com": true, "own.example.com": false} {
		if got := h.dueNow(host); got != want {
			t.Errorf("%s due now = %v, want %v", host, got, want)
		}
	}
}
