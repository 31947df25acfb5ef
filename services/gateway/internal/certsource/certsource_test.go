package certsource_test

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"

	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/certsource"
	"github.com/portico-dev/portico/services/gateway/internal/fakecertstore"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

func TestLookup(t *testing.T) {
	ca := testpki.NewCA(t)
	store := fakecertstore.Start(t)
	store.Put("shop.example.com", ca.Issue(t, "shop.example.com"))
	store.SetRoute(&certstorev1.Route{Hostname: "shop.example.com", TenantId: "t1", Upstream: "10.0.0.5:8080", RedirectHttps: true})
	store.Put("*.example.org", ca.Issue(t, "*.example.org"))
	store.Put("wrong.example.com", ca.Issue(t, "other.example.com"))
	store.Put("badroute.example.com", ca.Issue(t, "badroute.example.com"))
	store.SetRoute(&certstorev1.Route{Hostname: "badroute.example.com", Upstream: "no-port"})
	c := certsource.New(store.Client(t), zaptest.NewLogger(t, zaptest.Level(zap.PanicLevel)), nil)

	tests := []struct {
		name     string
		wantKind errkind.Kind // 0 (Internal) is checked only with wantErr
		wantErr  bool
		certName string
		route    certcache.Route
	}{
		{name: "shop.example.com", certName: "shop.example.com", route: certcache.Route{TenantID: "t1", Upstream: "10.0.0.5:8080", RedirectHTTPS: true}},
		{name: "a.example.org", certName: "*.example.org"},
		{name: "none.example.net", wantErr: true, wantKind: errkind.NotFound},
		{name: "wrong.example.com", wantErr: true, wantKind: errkind.Internal},
		{name: "badroute.example.com", wantErr: true, wantKind: errkind.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := c.Lookup(t.Context(), tt.name)
			if tt.wantErr {
				if err == nil || errkind.KindOf(err) != tt.wantKind {
					t.Fatalf("err = %v, want kind %v", err, tt.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Name != tt.name || e.CertName != tt.certName || e.Cert.PrivateKey == nil || e.Size <= 0 || e.NotAfter.IsZero() {
				t.Errorf("entry %+v", e)
			}
			if e.Route != tt.route {
				t.Errorf("route %+v, want %+v", e.Route, tt.route)
			}
		})
	}

	t.Run("unavailable", func(t *testing.T) {
		store.SetFailure(codes.Unavailable)
		defer store.SetFailure(codes.OK)
		if _, err := c.Lookup(t.Context(), "shop.example.com"); !errkind.Is(err, errkind.Unavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	})
}
