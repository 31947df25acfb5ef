package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/memstore"
	"github.com/portico-dev/portico/pkg/errkind"
)

const adminKey = "admin-0123456789abcdef0123456789abcdef"

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		key, hash := NewKey()
		if !strings.HasPrefix(key, KeyPrefix) || len(key) != keyLength || !wellFormedKey(key) {
			t.Fatalf("key %q is not ptk_ and 52 base32 characters", key)
		}
		if hash != HashKey(key) || len(hash) != 64 || strings.Contains(hash, key[len(KeyPrefix):]) {
			t.Fatalf("hash %q of %q", hash, key)
		}
		if seen[key] {
			t.Fatal("a key repeated")
		}
		seen[key] = true
	}
}

func TestAuthenticate(t *testing.T) {
	store := memstore.New()
	key, hash := NewKey()
	if err := store.CreateTenant(t.Context(), domains.Tenant{ID: "acme", KeyHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := NewKey()
	a := New(zaptest.NewLogger(t), adminKey, store, nil)
	tests := []struct {
		name   string
		header string
		want   Principal
		kind   errkind.Kind // when refused
	}{
		{"admin", "Bearer " + adminKey, Principal{Admin: true}, 0},
		{"scheme case-insensitive", "bearer " + adminKey, Principal{Admin: true}, 0},
		{"tenant", "Bearer " + key, Principal{TenantID: "acme"}, 0},
		{"missing", "", Principal{}, errkind.Unauthenticated},
		{"basic scheme", "Basic " + key, Principal{}, errkind.Unauthenticated},
		{"no scheme", key, Principal{}, errkind.Unauthenticated},
		{"unknown tenant key", "Bearer " + unknown, Principal{}, errkind.Unauthenticated},
		{"admin key prefix", "Bearer " + adminKey[:20], Principal{}, errkind.Unauthenticated},
		{"admin key extended", "Bearer " + adminKey + "x", Principal{}, errkind.Unauthenticated},
		{"key with bad alphabet", "Bearer " + strings.ToUpper(key), Principal{}, errkind.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Authenticate(t.Context(), tc.header)
			if tc.kind != 0 {
				if !errkind.Is(err, tc.kind) {
					t.Fatalf("error %v, want %v", err, tc.kind)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestInterceptorRules: the per-method rules, including fail-closed for unlisted methods
// and a closed admin API when no admin key is configured.
func TestInterceptorRules(t *testing.T) {
	store := memstore.New()
	key, hash := NewKey()
	if err := store.CreateTenant(t.Context(), domains.Tenant{ID: "acme", KeyHash: hash}); err != nil {
		t.Fatal(err)
	}
	rules := map[string]Access{"/x.Admin/": AdminOnly, "/x.Domains/": AdminOrTenant, "/grpc.health.v1.Health/": Public}
	withAdmin := New(zaptest.NewLogger(t), adminKey, store, rules)
	withoutAdmin := New(zaptest.NewLogger(t), "", store, rules)
	tests := []struct {
		name   string
		a      *Authenticator
		method string
		key    string
		kind   errkind.Kind // 0: allowed
	}{
		{"admin on admin", withAdmin, "/x.Admin/Create", adminKey, 0},
		{"tenant on admin", withAdmin, "/x.Admin/Create", key, errkind.PermissionDenied},
		{"tenant on domains", withAdmin, "/x.Domains/Get", key, 0},
		{"nobody on domains", withAdmin, "/x.Domains/Get", "", errkind.Unauthenticated},
		{"health without a key", withAdmin, "/grpc.health.v1.Health/Check", "", 0},
		{"unlisted method, even for the admin", withAdmin, "/x.Other/Do", adminKey, errkind.PermissionDenied},
		{"admin API without an admin key", withoutAdmin, "/x.Admin/Create", adminKey, errkind.Unauthenticated},
		{"tenants still work without an admin key", withoutAdmin, "/x.Domains/Get", key, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.key != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tc.key))
			}
			var seen Principal
			_, err := tc.a.Interceptor(ctx, nil, &grpc.UnaryServerInfo{FullMethod: tc.method}, func(ctx context.Context, _ any) (any, error) {
				seen, _ = FromContext(ctx)
				return nil, nil
			})
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tc.key == key && seen.TenantID != "acme" {
					t.Fatalf("handler saw %+v, want tenant acme", seen)
				}
				return
			}
			if !errkind.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
		})
	}
}
