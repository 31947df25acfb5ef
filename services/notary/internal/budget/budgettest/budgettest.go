// Package budgettest is the contract suite every budget.Store runs (memory, Redis,
// DynamoDB): one test body for all.
//
//	func TestContract(t *testing.T) {
//		budgettest.Run(t, func(t *testing.T, l budget.Limits) budget.Store { return newStoreForTest(t, l) })
//	}
package budgettest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/budget"
)

// Run runs the contract against empty, isolated stores made by newStore with limits.
func Run(t *testing.T, newStore func(t *testing.T, limits budget.Limits) budget.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T, limits budget.Limits) budget.Store)
	}{
		{"OrdersWindow", testOrdersWindow},
		{"CertificatesWindowPerRegisteredDomain", testCertsWindow},
		{"ConcurrentAdmitsStayUnderTheLimit", testConcurrentAdmits},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testOrdersWindow(t *testing.T, newStore func(*testing.T, budget.Limits) budget.Store) {
	b := newStore(t, budget.Limits{OrdersPer3h: 3, CertsPerDomainPer7d: 2})
	ctx := t.Context()
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		u, err := b.Admit(ctx, "a.example", at, "a")
		if err != nil || !u.Admitted || u.Orders3h != i+1 {
			t.Fatalf("order %d: %+v, %v", i+1, u, err)
		}
	}
	u, err := b.Admit(ctx, "b.example", t0.Add(3*time.Minute), "b")
	if err != nil || u.Admitted || !u.RetryAt.Equal(t0.Add(3*time.Hour)) || u.Orders3h != 3 {
		t.Fatalf("4th order in 3 h: %+v, %v; want refused until the first leaves the window", u, err)
	}
	if u, _ := b.Admit(ctx, "b.example", t0.Add(3*time.Minute+time.Second), "b"); u.Admitted || u.Orders3h != 3 {
		t.Fatalf("a refusal recorded an order: %+v", u)
	}
	if u, _ := b.Admit(ctx, "b.example", t0.Add(3*time.Hour+time.Second), "b"); !u.Admitted || u.Orders3h != 3 {
		t.Fatalf("after the window moved: %+v", u)
	}
}

func testCertsWindow(t *testing.T, newStore func(*testing.T, budget.Limits) budget.Store) {
	b := newStore(t, budget.Limits{OrdersPer3h: 100, CertsPerDomainPer7d: 2})
	ctx := t.Context()
	for i := range 2 {
		if n, err := b.Issued(ctx, "c.example", t0.Add(time.Duration(i)*time.Hour), "c"); err != nil || n != i+1 {
			t.Fatalf("certificate %d: %d, %v", i+1, n, err)
		}
	}
	u, err := b.Admit(ctx, "c.example", t0.Add(4*time.Hour), "c")
	if err != nil || u.Admitted || u.Certs7d != 2 || !u.RetryAt.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("3rd certificate for c.example in a week: %+v, %v; want refused", u, err)
	}
	if u, _ := b.Admit(ctx, "d.example", t0.Add(4*time.Hour), "d"); !u.Admitted || u.Certs7d != 0 {
		t.Fatalf("another registered domain is not limited by c.example's count: %+v", u)
	}
	if n, _ := b.Issued(ctx, "c.example", t0.Add(7*24*time.Hour+time.Millisecond), "c"); n != 2 {
		t.Fatalf("a week after the first certificate the window holds %d, want 2 (the first left)", n)
	}
}

func testConcurrentAdmits(t *testing.T, newStore func(*testing.T, budget.Limits) budget.Store) {
	const limit, callers = 5, 16
	b := newStore(t, budget.Limits{OrdersPer3h: limit})
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			u, err := b.Admit(t.Context(), "e.example", t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprint(i))
			if err != nil {
				t.Error(err)
				return
			}
			if u.Admitted {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != limit {
		t.Fatalf("%d of %d concurrent orders admitted, want the limit %d", got, callers, limit)
	}
}

func testCancelled(t *testing.T, newStore func(*testing.T, budget.Limits) budget.Store) {
	b := newStore(t, budget.Limits{OrdersPer3h: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Admit(ctx, "f.example", t0, "f"); err == nil {
		t.Fatal("Admit with a cancelled context succeeded")
	}
	if u, err := b.Admit(t.Context(), "f.example", t0, "f"); err != nil || !u.Admitted {
		t.Fatalf("a cancelled Admit used the only order: %+v, %v", u, err)
	}
}
