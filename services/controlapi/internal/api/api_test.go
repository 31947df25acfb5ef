package api

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/memstore"
	"github.com/portico-dev/portico/pkg/edge"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/services/controlapi/internal/auth"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/memlimiter"
)

// TestEnumNumbersMatchTheProto: the store's Status and Kind convert to the proto enums by
// number, so the numbers and names must agree one to one.
func TestEnumNumbersMatchTheProto(t *testing.T) {
	for _, s := range domains.AllStatuses() {
		if got := controlv1.DomainStatus(s).String(); got != "DOMAIN_STATUS_"+s.String() {
			t.Errorf("domains.Status %d is %s, the proto's %d is %s", s, s, s, got)
		}
	}
	if n := len(controlv1.DomainStatus_name); n != len(domains.AllStatuses())+1 {
		t.Errorf("the proto has %d statuses (with UNSPECIFIED), domains %d", n, len(domains.AllStatuses()))
	}
	for _, k := range []domains.Kind{domains.KindExact, domains.KindWildcard, domains.KindApexAndWildcard} {
		if got := controlv1.DomainKind(k).String(); got != "DOMAIN_KIND_"+k.String() {
			t.Errorf("domains.Kind %d is %s, the proto's is %s", k, k, got)
		}
	}
	if n := len(controlv1.DomainKind_name); n != 4 {
		t.Errorf("the proto has %d kinds, domains 3 (+UNSPECIFIED)", n)
	}
}

// notaryDown and certstoreDown answer every call with an error, as an unreachable
// service would.
type notaryDown struct{ notaryv1.NotaryServiceClient }

func (notaryDown) EnqueueDomain(context.Context, *notaryv1.EnqueueDomainRequest, ...grpc.CallOption) (*notaryv1.EnqueueDomainResponse, error) {
	return nil, errors.New("connection refused")
}

func (notaryDown) VerifyDomain(context.Context, *notaryv1.VerifyDomainRequest, ...grpc.CallOption) (*notaryv1.VerifyDomainResponse, error) {
	return nil, errors.New("connection refused")
}

type certstoreUp struct {
	certstorev1.CertWriteServiceClient
}

func (certstoreUp) DeleteRoute(context.Context, *certstorev1.DeleteRouteRequest, ...grpc.CallOption) (*certstorev1.DeleteRouteResponse, error) {
	return &certstorev1.DeleteRouteResponse{}, nil
}

func (certstoreUp) SetRoute(context.Context, *certstorev1.SetRouteRequest, ...grpc.CallOption) (*certstorev1.SetRouteResponse, error) {
	return &certstorev1.SetRouteResponse{}, nil
}

func newTestService(t *testing.T, store domains.Store, log *zap.Logger) *Service {
	t.Helper()
	s, err := New(Config{
		Log: log, Store: store, Notary: notaryDown{}, Certstore: certstoreUp{}, Limiter: memlimiter.New(nil),
		Edge: edge.Edge{CNAME: "edge.example.net"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuditEntries: tenant creation, key rotation, domain creation and deletion, and
// tenant deletion each leave one audit entry naming who did it.
func TestAuditEntries(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := newTestService(t, memstore.New(), zap.New(core))
	admin := auth.WithPrincipal(t.Context(), auth.Principal{Admin: true})
	tenant := auth.WithPrincipal(t.Context(), auth.Principal{TenantID: "acme"})

	if _, err := s.Tenants().CreateTenant(admin, &controlv1.CreateTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenants().RotateTenantKey(admin, &controlv1.RotateTenantKeyRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"a.example.com", "b.example.com"} {
		if _, err := s.Domains().CreateDomain(tenant, &controlv1.CreateDomainRequest{Hostname: host}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Domains().DeleteDomain(tenant, &controlv1.DeleteDomainRequest{Hostname: "a.example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenants().DeleteTenant(admin, &controlv1.DeleteTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range logs.FilterField(zap.Bool("audit", true)).All() {
		f := e.ContextMap()
		got = append(got, f["event"].(string)+" "+stringField(f, "hostname")+" by "+stringField(f, "identity"))
		for k, v := range f {
			if s, ok := v.(string); ok && strings.HasPrefix(s, auth.KeyPrefix) {
				t.Fatalf("an audit entry carries an API key in %s", k)
			}
		}
	}
	want := []string{
		"tenant.created  by admin",
		"tenant.key_rotated  by admin",
		"domain.created a.example.com by tenant:acme",
		"domain.created b.example.com by tenant:acme",
		"domain.deleted a.example.com by tenant:acme",
		"domain.deleted b.example.com by admin",
		"tenant.deleted  by admin",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit entries:\n got %q\nwant %q", got, want)
	}
}

func stringField(f map[string]any, k string) string {
	s, _ := f[k].(string)
	return s
}

func TestRecords(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name string
		edge edge.Edge
		d    domains.Domain
		want []string // "TYPE name value"
	}{
		{"subdomain with a CNAME target", edge.Edge{CNAME: "edge.example.net", Addresses: []netip.Addr{v4}},
			domains.Domain{Hostname: "shop.example.com", RegisteredDomain: "example.com", Kind: domains.KindExact, VerificationToken: "tok"},
			[]string{"TXT _verify.example.com tok", "CNAME shop.example.com edge.example.net"}},
		{"apex prefers addresses", edge.Edge{CNAME: "edge.example.net", Addresses: []netip.Addr{v4, v6}},
			domains.Domain{Hostname: "example.com", RegisteredDomain: "example.com", Kind: domains.KindExact, VerificationToken: "tok"},
			[]string{"TXT _verify.example.com tok", "A example.com 192.0.2.1", "AAAA example.com 2001:db8::1"}},
		{"apex with only a CNAME target", edge.Edge{CNAME: "edge.example.net"},
			domains.Domain{Hostname: "example.com", RegisteredDomain: "example.com", Kind: domains.KindExact, VerificationToken: "tok"},
			[]string{"TXT _verify.example.com tok", "CNAME example.com edge.example.net"}},
		{"addresses only", edge.Edge{Addresses: []netip.Addr{v4}},
			domains.Domain{Hostname: "a.b.example.co.uk", RegisteredDomain: "example.co.uk", Kind: domains.KindExact, VerificationToken: "tok"},
			[]string{"TXT _verify.example.co.uk tok", "A a.b.example.co.uk 192.0.2.1"}},
		{"wildcard with delegation", edge.Edge{CNAME: "edge.example.net"},
			domains.Domain{Hostname: "*.example.com", RegisteredDomain: "example.com", Kind: domains.KindWildcard, VerificationToken: "tok", DelegationLabel: "lbl"},
			[]string{"TXT _verify.example.com tok", "CNAME *.example.com edge.example.net", "CNAME _acme-challenge.example.com lbl.zone.example.net"}},
		{"apex and wildcard", edge.Edge{CNAME: "edge.example.net", Addresses: []netip.Addr{v4}},
			domains.Domain{Hostname: "example.com", RegisteredDomain: "example.com", Kind: domains.KindApexAndWildcard, VerificationToken: "tok", DelegationLabel: "lbl"},
			[]string{"TXT _verify.example.com tok", "A example.com 192.0.2.1", "CNAME *.example.com edge.example.net", "CNAME _acme-challenge.example.com lbl.zone.example.net"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{cfg: Config{Edge: tc.edge, DelegationZone: "zone.example.net"}}
			var got []string
			for _, r := range s.records(tc.d) {
				got = append(got, r.GetType()+" "+r.GetName()+" "+r.GetValue())
				if r.GetPurpose() == "" {
					t.Errorf("%s %s has no purpose", r.GetType(), r.GetName())
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("records:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// racingStore lets the "notary" write a domain between controlapi's read and its write,
// once per hostname, to exercise the compare-and-swap retry.
type racingStore struct {
	domains.Store
	mu    sync.Mutex
	raced map[string]bool
}

func (r *racingStore) UpdateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	r.mu.Lock()
	first := !r.raced[d.Hostname]
	r.raced[d.Hostname] = true
	r.mu.Unlock()
	if first {
		cur, err := r.Store.GetDomain(ctx, d.Hostname)
		if err != nil {
			return domains.Domain{}, err
		}
		cur.Progress.Failures++ // the notary's write
		if _, err := r.Store.UpdateDomain(ctx, cur); err != nil {
			return domains.Domain{}, err
		}
	}
	return r.Store.UpdateDomain(ctx, d)
}

// TestUpdateSurvivesAConcurrentNotaryWrite: the settings change and the notary's write
// both land; neither is lost to the other.
func TestUpdateSurvivesAConcurrentNotaryWrite(t *testing.T) {
	store := &racingStore{Store: memstore.New(), raced: map[string]bool{}}
	s := newTestService(t, store, zap.NewNop())
	tenant := auth.WithPrincipal(t.Context(), auth.Principal{TenantID: "acme"})
	if _, err := s.Domains().CreateDomain(tenant, &controlv1.CreateDomainRequest{Hostname: "shop.example.com"}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Domains().UpdateDomain(tenant, &controlv1.UpdateDomainRequest{Hostname: "shop.example.com", RedirectHttps: proto.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := store.GetDomain(t.Context(), "shop.example.com")
	if resp.GetDomain().GetRedirectHttps() || d.RedirectHTTPS || d.Progress.Failures != 1 || d.Version != 3 {
		t.Fatalf("after the race: redirect %v, notary's counter %d, version %d; want false, 1, 3", d.RedirectHTTPS, d.Progress.Failures, d.Version)
	}
}

// TestVerifyNowReschedulesWithTheNotaryDown, at the unit level with a fixed clock.
func TestVerifyNowReschedulesWithTheNotaryDown(t *testing.T) {
	store := memstore.New()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s, err := New(Config{Log: zap.NewNop(), Store: store, Notary: notaryDown{}, Certstore: certstoreUp{}, Limiter: memlimiter.New(nil),
		Edge: edge.Edge{CNAME: "edge.example.net"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tenant := auth.WithPrincipal(t.Context(), auth.Principal{TenantID: "acme"})
	if _, err := s.Domains().CreateDomain(tenant, &controlv1.CreateDomainRequest{Hostname: "shop.example.com"}); err != nil {
		t.Fatal(err)
	}
	d, _ := store.GetDomain(t.Context(), "shop.example.com")
	d.NextAttemptAt = now.Add(time.Hour)
	if _, err := store.UpdateDomain(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	resp, err := s.Domains().VerifyDomain(tenant, &controlv1.VerifyDomainRequest{Hostname: "shop.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetDomain().GetNextAttemptTime().AsTime(); !got.Equal(now) {
		t.Fatalf("next attempt %v, want now (%v)", got, now)
	}
	due, _ := store.DueDomains(t.Context(), now, 10)
	if !slices.Equal(due, []string{"shop.example.com"}) {
		t.Fatalf("due %v", due)
	}
}
