// Package leasetest is the contract suite every leases.Store runs (memory, Redis,
// DynamoDB): one test body for all.
//
//	func TestContract(t *testing.T) {
//		leasetest.Run(t, func(t *testing.T) leases.Store { return newStoreForTest(t) })
//	}
package leasetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/leases"
)

// Run runs the contract against fresh, isolated stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) leases.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s leases.Store)
	}{
		{"OneHolderAtATime", testOneHolder},
		{"ConcurrentAcquireHasOneWinner", testConcurrentAcquire},
		{"ExpiryFreesTheKey", testExpiry},
		{"RenewExtends", testRenewExtends},
		{"OnlyTheHolderRenewsOrReleases", testOnlyHolder},
		{"KeysAreIndependent", testIndependentKeys},
		{"HoldCancelsWorkWhenLost", testHoldCancels},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func mustAcquire(t *testing.T, s leases.Store, key string, ttl time.Duration) leases.Lease {
	t.Helper()
	l, err := s.Acquire(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", key, err)
	}
	if l.Token == "" || l.Key != key {
		t.Fatalf("Acquire returned %+v", l)
	}
	return l
}

func testOneHolder(t *testing.T, s leases.Store) {
	l := mustAcquire(t, s, "shop.example.com", time.Minute)
	if _, err := s.Acquire(t.Context(), "shop.example.com", time.Minute); !errors.Is(err, leases.ErrHeld) {
		t.Fatalf("second Acquire: %v, want ErrHeld", err)
	}
	if err := s.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	l2 := mustAcquire(t, s, "shop.example.com", time.Minute)
	if l2.Token == l.Token {
		t.Fatal("a new lease reused the old token")
	}
}

func testConcurrentAcquire(t *testing.T, s leases.Store) {
	const n = 32
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.Acquire(t.Context(), "race.example.com", time.Minute)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, leases.ErrHeld):
				t.Errorf("Acquire: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d holders, want exactly 1", wins.Load())
	}
}

func testExpiry(t *testing.T, s leases.Store) {
	old := mustAcquire(t, s, "shop.example.com", 150*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	l := mustAcquire(t, s, "shop.example.com", time.Minute)
	if _, err := s.Renew(t.Context(), old, time.Minute); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("the expired holder renewed: %v, want ErrLost", err)
	}
	if err := s.Release(t.Context(), old); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("the expired holder released: %v, want ErrLost", err)
	}
	if _, err := s.Acquire(t.Context(), "shop.example.com", time.Minute); !errors.Is(err, leases.ErrHeld) {
		t.Fatalf("the new holder's lease was released by the old holder: %v", err)
	}
	if err := s.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
}

func testRenewExtends(t *testing.T, s leases.Store) {
	l := mustAcquire(t, s, "shop.example.com", 300*time.Millisecond)
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		var err error
		if l, err = s.Renew(t.Context(), l, 300*time.Millisecond); err != nil {
			t.Fatalf("Renew: %v", err)
		}
	}
	if _, err := s.Acquire(t.Context(), "shop.example.com", time.Minute); !errors.Is(err, leases.ErrHeld) {
		t.Fatalf("a renewed lease expired: %v", err)
	}
}

func testOnlyHolder(t *testing.T, s leases.Store) {
	l := mustAcquire(t, s, "shop.example.com", time.Minute)
	forged := l
	forged.Token = leases.NewToken()
	if _, err := s.Renew(t.Context(), forged, time.Minute); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("Renew with another token: %v, want ErrLost", err)
	}
	if err := s.Release(t.Context(), forged); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("Release with another token: %v, want ErrLost", err)
	}
	if _, err := s.Acquire(t.Context(), "shop.example.com", time.Minute); !errors.Is(err, leases.ErrHeld) {
		t.Fatal("another token released the lease")
	}
	if err := s.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(t.Context(), l); !errors.Is(err, leases.ErrLost) {
		t.Fatalf("second Release: %v, want ErrLost", err)
	}
}

func testIndependentKeys(t *testing.T, s leases.Store) {
	mustAcquire(t, s, "a.example.com", time.Minute)
	mustAcquire(t, s, "b.example.com", time.Minute)
}

func testHoldCancels(t *testing.T, s leases.Store) {
	const ttl = 300 * time.Millisecond
	l := mustAcquire(t, s, "shop.example.com", ttl)
	// A renewed lease outlives its TTL while fn runs.
	err := leases.Hold(t.Context(), s, l, ttl, func(ctx context.Context) error {
		select {
		case <-time.After(2 * ttl):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		t.Fatalf("Hold over a renewed lease: %v", err)
	}
	// Released at the end.
	l = mustAcquire(t, s, "shop.example.com", ttl)
	// Stolen: release it behind the holder's back and let another take it.
	if err := s.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, s, "shop.example.com", time.Minute)
	err = leases.Hold(t.Context(), s, l, ttl, func(ctx context.Context) error {
		select {
		case <-time.After(10 * ttl):
			return errors.New("work was not cancelled")
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if !errors.Is(err, leases.ErrLost) {
		t.Fatalf("Hold over a lost lease: %v, want ErrLost", err)
	}
}

func testCancelled(t *testing.T, s leases.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Acquire(ctx, "shop.example.com", time.Minute); err == nil {
		t.Fatal("Acquire with a cancelled context succeeded")
	}
	mustAcquire(t, s, "shop.example.com", time.Minute)
}
