package redisstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/redisstore"
	"github.com/portico-dev/portico/pkg/domains/storetest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) domains.Store {
		rdb, prefix := redistest.New(t)
		return redisstore.New(rdb, prefix)
	})
}

// TestKeysShareOneHashTag checks the Cluster rule: every key the store writes carries the
// prefix's hash tag, so each script touches one slot.
func TestKeysShareOneHashTag(t *testing.T) {
	rdb, prefix := redistest.New(t)
	s := redisstore.New(rdb, prefix)
	ctx := t.Context()
	if err := s.CreateTenant(ctx, storetest.NewTenant("acme")); err != nil {
		t.Fatal(err)
	}
	d, err := s.CreateDomain(ctx, storetest.NewDomain("shop.example.com", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	d.Status = domains.StatusActive
	if _, err := s.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerificationToken(ctx, "acme", "example.com", "tok"); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*"+prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 8 {
		t.Fatalf("only %d keys written: %v", len(keys), keys)
	}
	// Redis Cluster hashes only the part between the first { and the following }: keys
	// that begin with the same {tag} are in the same slot.
	for _, k := range keys {
		if !strings.HasPrefix(k, "{"+prefix+"}:") {
			t.Fatalf("key %q does not start with the hash tag {%s}", k, prefix)
		}
	}
}

func BenchmarkCreateDomain(b *testing.B) {
	rdb, prefix := redistest.New(b)
	s := redisstore.New(rdb, prefix)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		d := storetest.NewDomain(fmt.Sprintf("h%d.example.com", i), "acme")
		if _, err := s.CreateDomain(b.Context(), d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetDomain(b *testing.B) {
	rdb, prefix := redistest.New(b)
	s := redisstore.New(rdb, prefix)
	d := storetest.NewDomain("shop.example.com", "acme")
	d.NextAttemptAt = time.Now()
	if _, err := s.CreateDomain(b.Context(), d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetDomain(b.Context(), "shop.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
