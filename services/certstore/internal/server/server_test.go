package server_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/testcert"
)

func put(t *testing.T, r *replica, name string, issued testcert.Issued, fence int64) *certstorev1.PutCertificateResponse {
	t.Helper()
	resp, err := r.write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{
		Hostname: name, CertificateChain: issued.Chain, PrivateKey: issued.Key, FencingToken: fence,
	})
	if err != nil {
		t.Fatalf("PutCertificate(%s): %v", name, err)
	}
	return resp
}

func setRoute(t *testing.T, r *replica, name, tenant string) {
	t.Helper()
	if _, err := r.write.SetRoute(t.Context(), &certstorev1.SetRouteRequest{Route: &certstorev1.Route{Hostname: name, TenantId: tenant}}); err != nil {
		t.Fatalf("SetRoute(%s): %v", name, err)
	}
}

// keyMatchesLeaf is the reader's check: the private key belongs to the leaf.
func keyMatchesLeaf(chain [][]byte, keyDER []byte) error {
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return err
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("key is a %T", key)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		return errors.New("the key does not match the leaf")
	}
	return nil
}

func TestLookup(t *testing.T) {
	c := newCluster(t)
	r := c.start(nil)
	ca := testcert.NewCA(t)
	exact := ca.Issue(t, testcert.Leaf{DNSNames: []string{"shop.example.com"}})
	wild := ca.Issue(t, testcert.Leaf{DNSNames: []string{"*.example.com"}})
	orphan := ca.Issue(t, testcert.Leaf{DNSNames: []string{"noroute.example.com"}})
	put(t, r, "shop.example.com", exact, 1)
	put(t, r, "*.example.com", wild, 1)
	put(t, r, "noroute.example.com", orphan, 1)
	setRoute(t, r, "shop.example.com", "tenant-shop")
	setRoute(t, r, "*.example.com", "tenant-wild")
	setRoute(t, r, "own.example.com", "tenant-own")
	setRoute(t, r, "route-only.other.com", "tenant-x")

	tests := []struct {
		name       string
		hostname   string
		wantCode   codes.Code
		wantMatch  certstorev1.MatchKind
		wantCert   string
		wantTenant string
		wantLeaf   testcert.Issued
	}{
		{"exact certificate and route", "shop.example.com", codes.OK, certstorev1.MatchKind_MATCH_KIND_EXACT, "shop.example.com", "tenant-shop", exact},
		{"wildcard one label up, its route", "blog.example.com", codes.OK, certstorev1.MatchKind_MATCH_KIND_WILDCARD, "*.example.com", "tenant-wild", wild},
		{"wildcard with the name's own route", "own.example.com", codes.OK, certstorev1.MatchKind_MATCH_KIND_WILDCARD, "*.example.com", "tenant-own", wild},
		{"never two labels up", "a.blog.example.com", codes.NotFound, 0, "", "", testcert.Issued{}},
		{"certificate without any route", "noroute.example.com", codes.NotFound, 0, "", "", testcert.Issued{}},
		{"route without a certificate", "route-only.other.com", codes.NotFound, 0, "", "", testcert.Issued{}},
		{"nothing at all", "nothing.other.com", codes.NotFound, 0, "", "", testcert.Issued{}},
		{"the wildcard's own base is not covered", "example.com", codes.NotFound, 0, "", "", testcert.Issued{}},
		{"a wildcard is not a lookup name", "*.example.com", codes.InvalidArgument, 0, "", "", testcert.Issued{}},
		{"an IP address", "192.0.2.1", codes.InvalidArgument, 0, "", "", testcert.Issued{}},
		{"empty", "", codes.InvalidArgument, 0, "", "", testcert.Issued{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: tc.hostname})
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tc.wantCode)
			}
			if tc.wantCode == codes.InvalidArgument {
				var e *errkind.Error
				if !errors.As(errkind.FromGRPC(err), &e) || len(e.Violations) == 0 || e.Violations[0].Field != "hostname" {
					t.Fatalf("error %v does not name the hostname field", err)
				}
			}
			if tc.wantCode != codes.OK {
				return
			}
			if resp.GetMatch() != tc.wantMatch || resp.GetCertificateName() != tc.wantCert || resp.GetRoute().GetTenantId() != tc.wantTenant {
				t.Fatalf("match %v cert %q tenant %q, want %v %q %q", resp.GetMatch(), resp.GetCertificateName(), resp.GetRoute().GetTenantId(), tc.wantMatch, tc.wantCert, tc.wantTenant)
			}
			if !slices.EqualFunc(resp.GetCertificateChain(), tc.wantLeaf.Chain, bytes.Equal) || !bytes.Equal(resp.GetPrivateKey(), tc.wantLeaf.Key) {
				t.Fatal("chain or key differ from what was put")
			}
			if err := keyMatchesLeaf(resp.GetCertificateChain(), resp.GetPrivateKey()); err != nil {
				t.Fatal(err)
			}
			if resp.GetVersion() != 1 || !resp.GetNotAfter().AsTime().Equal(tc.wantLeaf.Leaf.NotAfter) {
				t.Fatalf("version %d notAfter %v, want 1 and %v", resp.GetVersion(), resp.GetNotAfter().AsTime(), tc.wantLeaf.Leaf.NotAfter)
			}
		})
	}

	t.Run("a removed domain stops being served though its certificate lingers", func(t *testing.T) {
		if _, err := r.write.DeleteRoute(t.Context(), &certstorev1.DeleteRouteRequest{Hostname: "shop.example.com"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "shop.example.com"}); status.Code(err) != codes.NotFound {
			t.Fatalf("after DeleteRoute: %v, want NotFound", err)
		}
	})
	t.Run("a deleted exact certificate falls back to the wildcard", func(t *testing.T) {
		setRoute(t, r, "shop.example.com", "tenant-shop")
		if _, err := r.write.DeleteCertificate(t.Context(), &certstorev1.DeleteCertificateRequest{Hostname: "shop.example.com", FencingToken: 1}); err != nil {
			t.Fatal(err)
		}
		resp, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "shop.example.com"})
		if err != nil || resp.GetMatch() != certstorev1.MatchKind_MATCH_KIND_WILDCARD || resp.GetRoute().GetTenantId() != "tenant-shop" {
			t.Fatalf("Lookup = %v, %v; want the wildcard with the name's own route", resp, err)
		}
	})
}

func TestPutCertificate(t *testing.T) {
	c := newCluster(t)
	r := c.start(nil)
	ca := testcert.NewCA(t)
	a := ca.Issue(t, testcert.Leaf{DNSNames: []string{"a.example.com"}})
	b := ca.Issue(t, testcert.Leaf{DNSNames: []string{"a.example.com"}})

	first := put(t, r, "A.Example.com", a, 10) // normalized
	if first.GetVersion() != 1 {
		t.Fatalf("first version %d", first.GetVersion())
	}
	life := a.Leaf.NotAfter.Sub(a.Leaf.NotBefore)
	if want := a.Leaf.NotAfter.Add(-life / 3).Truncate(time.Millisecond); !first.GetRenewTime().AsTime().Equal(want) {
		t.Fatalf("default renew time %v, want %v (a third of the lifetime left)", first.GetRenewTime().AsTime(), want)
	}

	tests := []struct {
		name      string
		req       *certstorev1.PutCertificateRequest
		wantCode  codes.Code
		wantField string
	}{
		{"stale fencing token", &certstorev1.PutCertificateRequest{Hostname: "a.example.com", CertificateChain: b.Chain, PrivateKey: b.Key, FencingToken: 9}, codes.FailedPrecondition, ""},
		{"key of another certificate", &certstorev1.PutCertificateRequest{Hostname: "a.example.com", CertificateChain: b.Chain, PrivateKey: a.Key, FencingToken: 10}, codes.InvalidArgument, "private_key"},
		{"chain for another name", &certstorev1.PutCertificateRequest{Hostname: "b.example.com", CertificateChain: b.Chain, PrivateKey: b.Key}, codes.InvalidArgument, "certificate_chain"},
		{"bad name", &certstorev1.PutCertificateRequest{Hostname: "a..example.com", CertificateChain: b.Chain, PrivateKey: b.Key}, codes.InvalidArgument, "hostname"},
		{"invalid renew time", &certstorev1.PutCertificateRequest{Hostname: "a.example.com", CertificateChain: b.Chain, PrivateKey: b.Key, FencingToken: 10, RenewTime: &timestamppb.Timestamp{Nanos: -1}}, codes.InvalidArgument, "renew_time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.write.PutCertificate(t.Context(), tc.req)
			if status.Code(err) != tc.wantCode {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tc.wantCode)
			}
			if tc.wantField != "" {
				var e *errkind.Error
				if !errors.As(errkind.FromGRPC(err), &e) || !slices.ContainsFunc(e.Violations, func(v errkind.FieldViolation) bool { return v.Field == tc.wantField }) {
					t.Fatalf("violations of %v do not name %s", err, tc.wantField)
				}
			}
			got, err := r.write.GetCertificate(t.Context(), &certstorev1.GetCertificateRequest{Hostname: "a.example.com"})
			if err != nil || got.GetVersion() != 1 || !bytes.Equal(got.GetCertificateChain()[0], a.Chain[0]) {
				t.Fatalf("after a refused put the stored certificate changed: %v, %v", got, err)
			}
		})
	}

	renew := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	second, err := r.write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{
		Hostname: "a.example.com", CertificateChain: b.Chain, PrivateKey: b.Key, FencingToken: 11, RenewTime: timestamppb.New(renew),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.write.GetCertificate(t.Context(), &certstorev1.GetCertificateRequest{Hostname: "a.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if second.GetVersion() != 2 || got.GetVersion() != 2 || got.GetFencingToken() != 11 || !got.GetRenewTime().AsTime().Equal(renew) {
		t.Fatalf("GetCertificate = version %d token %d renew %v; want 2, 11, %v", got.GetVersion(), got.GetFencingToken(), got.GetRenewTime().AsTime(), renew)
	}
}

func TestListDue(t *testing.T) {
	c := newCluster(t)
	r := c.start(nil)
	ca := testcert.NewCA(t)
	now := time.Now()
	// Lifetimes of 1 to 8 days: renewal (half left) due at now-1h + lifetime/2.
	var all []string
	for i := 1; i <= 8; i++ {
		name := fmt.Sprintf("d%d.example.com", i)
		all = append(all, name)
		put(t, r, name, ca.Issue(t, testcert.Leaf{DNSNames: []string{name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(-time.Hour + time.Duration(i)*24*time.Hour)}), 1)
	}
	list := func(before time.Time, size int32) []string {
		var names []string
		token := ""
		for {
			resp, err := r.write.ListDue(t.Context(), &certstorev1.ListDueRequest{Before: timestamppb.New(before), PageSize: size, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range resp.GetCertificates() {
				names = append(names, d.GetHostname())
			}
			if token = resp.GetNextPageToken(); token == "" {
				return names
			}
		}
	}
	tests := []struct {
		name   string
		before time.Time
		want   []string
	}{
		{"none due", now, nil},
		{"first two", now.Add(24*time.Hour + time.Minute), all[:2]},
		{"all", now.Add(10 * 24 * time.Hour), all},
	}
	for _, tc := range tests {
		for _, size := range []int32{0, 1, 3} {
			t.Run(fmt.Sprintf("%s, page size %d", tc.name, size), func(t *testing.T) {
				if got := list(tc.before, size); !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
	}
	for _, bad := range []struct {
		name  string
		req   *certstorev1.ListDueRequest
		field string
	}{
		{"no bound", &certstorev1.ListDueRequest{}, "before"},
		{"page too large", &certstorev1.ListDueRequest{Before: timestamppb.Now(), PageSize: 1001}, "page_size"},
		{"foreign token", &certstorev1.ListDueRequest{Before: timestamppb.Now(), PageToken: "xyz"}, "page_token"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := r.write.ListDue(t.Context(), bad.req)
			var e *errkind.Error
			if !errors.As(errkind.FromGRPC(err), &e) || e.Kind != errkind.InvalidArgument || e.Violations[0].Field != bad.field {
				t.Fatalf("err = %v, want InvalidArgument naming %s", err, bad.field)
			}
		})
	}
}

func TestSetRouteValidation(t *testing.T) {
	r := newCluster(t).start(nil)
	tests := []struct {
		name   string
		route  *certstorev1.Route
		fields []string
	}{
		{"no route", nil, []string{"route"}},
		{"everything wrong", &certstorev1.Route{Hostname: "localhost", Upstream: "nope"}, []string{"route.hostname", "route.tenant_id", "route.upstream"}},
		{"port out of range", &certstorev1.Route{Hostname: "a.example.com", TenantId: "t", Upstream: "10.0.0.1:70000"}, []string{"route.upstream"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.write.SetRoute(t.Context(), &certstorev1.SetRouteRequest{Route: tc.route})
			var e *errkind.Error
			if !errors.As(errkind.FromGRPC(err), &e) || e.Kind != errkind.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			var fields []string
			for _, v := range e.Violations {
				fields = append(fields, v.Field)
			}
			if !slices.Equal(fields, tc.fields) {
				t.Fatalf("fields %v, want %v", fields, tc.fields)
			}
		})
	}
	if _, err := r.write.SetRoute(t.Context(), &certstorev1.SetRouteRequest{Route: &certstorev1.Route{Hostname: "*.example.com", TenantId: "t", Upstream: "backend.internal:8080", RedirectHttps: true}}); err != nil {
		t.Fatalf("a wildcard route: %v", err)
	}
}
