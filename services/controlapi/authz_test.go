package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/portico-dev/portico/pkg/domains"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	"github.com/portico-dev/portico/services/controlapi/internal/auth"
)

// TestAuthorizationMatrix runs every operation as the owner, another tenant, the admin,
// no key and wrong keys, over gRPC and over JSON, and checks the answer of each. The
// domain operations act on a domain of the owner; the other tenant must get exactly the
// answer of a missing domain.
func TestAuthorizationMatrix(t *testing.T) {
	notary := &fakeNotary{}
	certstore := &fakeCertstore{}
	h := startControlAPI(t, harnessOptions{
		notary:    serveFake(t, &notaryServiceDesc, notary),
		certstore: serveFake(t, &certWriteServiceDesc, certstore),
	})
	ownerKey := h.createTenant("owner")
	otherKey := h.createTenant("other")
	h.createDomain(ownerKey, "shop.owner-example.com")
	h.createDomain(otherKey, "blog.other-example.com")
	unknownTenantKey, _ := auth.NewKey()

	principals := []struct {
		name string
		key  string
	}{
		{"owner", ownerKey},
		{"other tenant", otherKey},
		{"admin", testAdminKey},
		{"no key", ""},
		{"unknown tenant key", unknownTenantKey},
		{"garbage key", "hunter2"},
		{"admin key off by one", testAdminKey[:len(testAdminKey)-1] + "x"},
	}
	// want maps principal name to the gRPC code; missing names default to
	// UNAUTHENTICATED (the three wrong keys and no key).
	type want map[string]codes.Code
	ops := []struct {
		name string
		// grpc performs the call; n numbers fresh objects so that repeated calls (one
		// per principal and transport) do not collide.
		grpc func(ctx context.Context, n int) error
		http func(key string, n int) jsonAnswer
		want want
	}{
		{
			name: "GetDomain",
			grpc: func(ctx context.Context, _ int) error {
				_, err := h.domains.GetDomain(ctx, &controlv1.GetDomainRequest{Hostname: "shop.owner-example.com"})
				return err
			},
			http: func(key string, _ int) jsonAnswer {
				return h.call("GET", "/v1/domains/shop.owner-example.com", key, nil)
			},
			want: want{"owner": codes.OK, "other tenant": codes.NotFound, "admin": codes.OK},
		},
		{
			name: "UpdateDomain",
			grpc: func(ctx context.Context, n int) error {
				_, err := h.domains.UpdateDomain(ctx, &controlv1.UpdateDomainRequest{Hostname: "shop.owner-example.com", RedirectHttps: proto.Bool(n%2 == 0)})
				return err
			},
			http: func(key string, n int) jsonAnswer {
				return h.call("PATCH", "/v1/domains/shop.owner-example.com", key, map[string]any{"redirect_https": n%2 == 0})
			},
			want: want{"owner": codes.OK, "other tenant": codes.NotFound, "admin": codes.OK},
		},
		{
			name: "VerifyDomain",
			grpc: func(ctx context.Context, _ int) error {
				_, err := h.domains.VerifyDomain(ctx, &controlv1.VerifyDomainRequest{Hostname: "shop.owner-example.com"})
				return err
			},
			http: func(key string, _ int) jsonAnswer {
				return h.call("POST", "/v1/domains/shop.owner-example.com:verify", key, map[string]any{})
			},
			want: want{"owner": codes.OK, "other tenant": codes.NotFound, "admin": codes.OK},
		},
		{
			name: "DeleteDomain",
			grpc: func(ctx context.Context, n int) error {
				host := seedOwned(t, h, n)
				_, err := h.domains.DeleteDomain(ctx, &controlv1.DeleteDomainRequest{Hostname: host})
				return err
			},
			http: func(key string, n int) jsonAnswer {
				return h.call("DELETE", "/v1/domains/"+seedOwned(t, h, n), key, nil)
			},
			want: want{"owner": codes.OK, "other tenant": codes.NotFound, "admin": codes.OK},
		},
		{
			name: "ListDomains",
			grpc: func(ctx context.Context, _ int) error {
				_, err := h.domains.ListDomains(ctx, &controlv1.ListDomainsRequest{})
				return err
			},
			http: func(key string, _ int) jsonAnswer { return h.call("GET", "/v1/domains", key, nil) },
			want: want{"owner": codes.OK, "other tenant": codes.OK, "admin": codes.OK},
		},
		{
			name: "ListDomains of another tenant",
			grpc: func(ctx context.Context, _ int) error {
				_, err := h.domains.ListDomains(ctx, &controlv1.ListDomainsRequest{TenantId: "owner"})
				return err
			},
			http: func(key string, _ int) jsonAnswer { return h.call("GET", "/v1/domains?tenant_id=owner", key, nil) },
			want: want{"owner": codes.OK, "other tenant": codes.InvalidArgument, "admin": codes.OK},
		},
		{
			name: "CreateDomain",
			grpc: func(ctx context.Context, n int) error {
				_, err := h.domains.CreateDomain(ctx, &controlv1.CreateDomainRequest{Hostname: fmt.Sprintf("new%d.create-example.com", n), TenantId: tenantFor(ctx)})
				return err
			},
			http: func(key string, n int) jsonAnswer {
				body := map[string]any{"hostname": fmt.Sprintf("new%d.create-example.com", n)}
				if key == testAdminKey {
					body["tenant_id"] = "owner"
				}
				return h.call("POST", "/v1/domains", key, body)
			},
			want: want{"owner": codes.OK, "other tenant": codes.OK, "admin": codes.OK},
		},
		{
			name: "ListTenants",
			grpc: func(ctx context.Context, _ int) error {
				_, err := h.tenants.ListTenants(ctx, &controlv1.ListTenantsRequest{})
				return err
			},
			http: func(key string, _ int) jsonAnswer { return h.call("GET", "/v1/tenants", key, nil) },
			want: want{"owner": codes.PermissionDenied, "other tenant": codes.PermissionDenied, "admin": codes.OK},
		},
		{
			name: "CreateTenant",
			grpc: func(ctx context.Context, n int) error {
				_, err := h.tenants.CreateTenant(ctx, &controlv1.CreateTenantRequest{TenantId: fmt.Sprintf("made-%d", n)})
				return err
			},
			http: func(key string, n int) jsonAnswer {
				return h.call("POST", "/v1/tenants", key, map[string]any{"tenant_id": fmt.Sprintf("made-%d", n)})
			},
			want: want{"owner": codes.PermissionDenied, "other tenant": codes.PermissionDenied, "admin": codes.OK},
		},
		{
			name: "RotateTenantKey of the owner",
			grpc: func(ctx context.Context, _ int) error {
				_, err := h.tenants.RotateTenantKey(ctx, &controlv1.RotateTenantKeyRequest{TenantId: "rotated"})
				return err
			},
			http: func(key string, _ int) jsonAnswer {
				return h.call("POST", "/v1/tenants/rotated:rotateKey", key, map[string]any{})
			},
			want: want{"owner": codes.PermissionDenied, "other tenant": codes.PermissionDenied, "admin": codes.OK},
		},
		{
			name: "DeleteTenant",
			grpc: func(ctx context.Context, n int) error {
				_, err := h.tenants.DeleteTenant(ctx, &controlv1.DeleteTenantRequest{TenantId: seedTenant(t, h, n)})
				return err
			},
			http: func(key string, n int) jsonAnswer {
				return h.call("DELETE", "/v1/tenants/"+seedTenant(t, h, n), key, nil)
			},
			want: want{"owner": codes.PermissionDenied, "other tenant": codes.PermissionDenied, "admin": codes.OK},
		},
	}
	h.createTenant("rotated")

	n := 0
	for _, op := range ops {
		for _, p := range principals {
			wantCode, ok := op.want[p.name]
			if !ok {
				wantCode = codes.Unauthenticated
			}
			t.Run(op.name+"/"+p.name+"/gRPC", func(t *testing.T) {
				n++
				ctx := withKey(principalContext(t, p.key), p.key)
				if got := status.Code(op.grpc(ctx, n)); got != wantCode {
					t.Fatalf("code %v, want %v", got, wantCode)
				}
			})
			t.Run(op.name+"/"+p.name+"/JSON", func(t *testing.T) {
				n++
				a := op.http(p.key, n)
				if wantStatus := httpStatusOf(wantCode); a.status != wantStatus {
					t.Fatalf("HTTP %d, want %d: %s", a.status, wantStatus, a.raw)
				}
			})
		}
	}

	// The other tenant's view of the owner's domain is byte for byte the view of a
	// missing domain (with the hostname swapped).
	t.Run("foreign and missing are indistinguishable", func(t *testing.T) {
		for _, path := range []string{"/v1/domains/%s", "/v1/domains/%s:verify"} {
			method := "GET"
			if strings.HasSuffix(path, ":verify") {
				method = "POST"
			}
			foreign := h.call(method, fmt.Sprintf(path, "shop.owner-example.com"), otherKey, map[string]any{})
			missing := h.call(method, fmt.Sprintf(path, "nothing.owner-example.com"), otherKey, map[string]any{})
			if foreign.status != http.StatusNotFound {
				t.Fatalf("foreign %s: HTTP %d", path, foreign.status)
			}
			same := strings.ReplaceAll(string(missing.raw), "nothing.owner-example.com", "shop.owner-example.com")
			if string(foreign.raw) != same {
				t.Fatalf("JSON answers differ:\nforeign %s\nmissing %s", foreign.raw, missing.raw)
			}
		}
		ctx := withKey(context.Background(), otherKey)
		_, ferr := h.domains.DeleteDomain(ctx, &controlv1.DeleteDomainRequest{Hostname: "shop.owner-example.com"})
		_, merr := h.domains.DeleteDomain(ctx, &controlv1.DeleteDomainRequest{Hostname: "nothing.owner-example.com"})
		fs, ms := status.Convert(ferr), status.Convert(merr)
		if fs.Code() != codes.NotFound || fs.Code() != ms.Code() || len(fs.Details()) != len(ms.Details()) ||
			fs.Message() != strings.ReplaceAll(ms.Message(), "nothing.owner-example.com", "shop.owner-example.com") {
			t.Fatalf("gRPC answers differ: foreign %v, missing %v", ferr, merr)
		}
		if d, err := h.store.GetDomain(context.Background(), "shop.owner-example.com"); err != nil || d.Status == domains.StatusDeleting {
			t.Fatalf("another tenant's delete touched the domain: %+v, %v", d, err)
		}
	})

	t.Run("a tenant lists only its own domains", func(t *testing.T) {
		a := h.call("GET", "/v1/domains?page_size=1000", otherKey, nil)
		for _, d := range a.body["domains"].([]any) {
			if tid := d.(map[string]any)["tenant_id"]; tid != "other" {
				t.Fatalf("the other tenant's listing holds a domain of %v", tid)
			}
		}
	})
}

// principalContext remembers which key a gRPC call carries, for tenantFor.
func principalContext(t *testing.T, key string) context.Context {
	return context.WithValue(t.Context(), keyOfCall{}, key)
}

type keyOfCall struct{}

// tenantFor is the tenant_id an admin create names (tenants leave it empty).
func tenantFor(ctx context.Context) string {
	if k, _ := ctx.Value(keyOfCall{}).(string); k == testAdminKey {
		return "owner"
	}
	return ""
}

// seedOwned stores a fresh domain of the owner directly and returns its hostname.
func seedOwned(t *testing.T, h *harness, n int) string {
	d := domains.Domain{Hostname: fmt.Sprintf("del%d.owner-example.com", n), TenantID: "owner", Kind: domains.KindExact,
		RegisteredDomain: "owner-example.com", Status: domains.StatusPendingVerification, VerificationToken: "portico-verify=x"}
	if _, err := h.store.CreateDomain(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d.Hostname
}

// seedTenant creates a throwaway tenant for a delete.
func seedTenant(t *testing.T, h *harness, n int) string {
	id := fmt.Sprintf("doomed-%d", n)
	h.createTenant(id)
	return id
}

// httpStatusOf is grpc-gateway's mapping, spelled out for the codes the tests expect.
func httpStatusOf(c codes.Code) int {
	return map[codes.Code]int{
		codes.OK:                http.StatusOK,
		codes.NotFound:          http.StatusNotFound,
		codes.InvalidArgument:   http.StatusBadRequest,
		codes.Unauthenticated:   http.StatusUnauthorized,
		codes.PermissionDenied:  http.StatusForbidden,
		codes.AlreadyExists:     http.StatusConflict,
		codes.ResourceExhausted: http.StatusTooManyRequests,
	}[c]
}
