package redisstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/redisstore"
	"github.com/portico-dev/portico/services/certstore/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		rdb, prefix := redistest.New(t)
		return redisstore.New(rdb, prefix)
	})
}

// TestExpiryIndexRepair: states a crash or a renewal can leave between a record and
// its index entry, and what ListDue makes of them: it returns only really-due records
// and repairs the entry.
func TestExpiryIndexRepair(t *testing.T) {
	ctx := t.Context()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := func(name string, renew time.Time) store.Certificate {
		return store.Certificate{Name: name, Chain: [][]byte{{0x04, 0x01, 'x'}}, KeyRef: []byte("k"), NotAfter: renew.Add(time.Hour), RenewTime: renew, FencingToken: 1}
	}
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *redisstore.Store, rdb *redis.Client, due string)
		wantDue   bool
		wantScore float64 // 0: the entry must be gone
	}{
		{
			name: "renewed: the entry stays early until ListDue raises it",
			setup: func(t *testing.T, s *redisstore.Store, _ *redis.Client, _ string) {
				mustPut(t, s, cert("x.example.com", base.Add(time.Hour)))
				mustPut(t, s, cert("x.example.com", base.Add(100*time.Hour)))
			},
			wantScore: float64(base.Add(100 * time.Hour).UnixMilli()),
		},
		{
			name: "crash after lowering the entry, before the switch: no record",
			setup: func(t *testing.T, _ *redisstore.Store, rdb *redis.Client, due string) {
				rdb.ZAdd(ctx, due, redis.Z{Score: float64(base.Add(time.Hour).UnixMilli()), Member: "x.example.com"})
			},
		},
		{
			name: "crash after a delete, before removing the entry",
			setup: func(t *testing.T, s *redisstore.Store, rdb *redis.Client, due string) {
				mustPut(t, s, cert("x.example.com", base.Add(time.Hour)))
				if _, err := s.DeleteCertificate(ctx, "x.example.com", 1); err != nil {
					t.Fatal(err)
				}
				rdb.ZAdd(ctx, due, redis.Z{Score: float64(base.Add(time.Hour).UnixMilli()), Member: "x.example.com"})
			},
		},
		{
			name: "an entry earlier than a due record is returned and corrected",
			setup: func(t *testing.T, s *redisstore.Store, rdb *redis.Client, due string) {
				mustPut(t, s, cert("x.example.com", base.Add(2*time.Hour)))
				rdb.ZAdd(ctx, due, redis.Z{Score: float64(base.UnixMilli()), Member: "x.example.com"})
			},
			wantDue:   true,
			wantScore: float64(base.Add(2 * time.Hour).UnixMilli()),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := redistest.New(t)
			s := redisstore.New(rdb, prefix)
			due := prefix + ":due"
			tc.setup(t, s, rdb, due)
			got, _, err := s.ListDue(ctx, base.Add(3*time.Hour), 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) == 1) != tc.wantDue || len(got) > 1 {
				t.Fatalf("ListDue = %+v, want due: %v", got, tc.wantDue)
			}
			score, err := rdb.ZScore(ctx, due, "x.example.com").Result()
			if tc.wantScore == 0 {
				if !errors.Is(err, redis.Nil) {
					t.Fatalf("entry still there (score %v, %v), want it removed", score, err)
				}
				return
			}
			if err != nil || score != tc.wantScore {
				t.Fatalf("entry score %v (%v), want %v", score, err, tc.wantScore)
			}
		})
	}
}

func mustPut(t *testing.T, s *redisstore.Store, c store.Certificate) {
	t.Helper()
	if _, _, err := s.PutCertificate(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

// TestClusterKeyLayout: the keys one script touches share a hash tag, so the store
// works on Redis Cluster.
func TestClusterKeyLayout(t *testing.T) {
	rdb, prefix := redistest.New(t)
	s := redisstore.New(rdb, prefix)
	mustPut(t, s, store.Certificate{Name: "*.example.com", Chain: [][]byte{{0x04, 0x01, 'x'}}, KeyRef: []byte("k"), RenewTime: time.Now(), FencingToken: 1})
	if err := s.SetRoute(t.Context(), store.Route{Hostname: "*.example.com", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{prefix + ":due", prefix + ":{*.example.com}:cert", prefix + ":{*.example.com}:route"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

// BenchmarkGetServing is Lookup's one storage read (certificate and route of a name).
func BenchmarkGetServing(b *testing.B) {
	rdb, prefix := redistest.New(b)
	storetest.BenchGetServing(b, redisstore.New(rdb, prefix))
}

func BenchmarkPutCertificate(b *testing.B) {
	rdb, prefix := redistest.New(b)
	storetest.BenchPutCertificate(b, redisstore.New(rdb, prefix))
}
