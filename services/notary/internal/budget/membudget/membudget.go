// Package membudget is an in-process budget.Store, for tests and single-process tools.
package membudget

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/budget"
)

// Store is an in-memory budget. The zero value is not usable; call New.
type Store struct {
	limits budget.Limits
	mu     sync.Mutex
	orders []time.Time
	certs  map[string][]time.Time
}

var _ budget.Store = (*Store)(nil)

// New returns an empty budget with limits.
func New(limits budget.Limits) *Store {
	return &Store{limits: limits, certs: map[string][]time.Time{}}
}

// prune keeps the entries younger than window at now.
func prune(entries []time.Time, now time.Time, window time.Duration) []time.Time {
	out := entries[:0]
	for _, e := range entries {
		if e.After(now.Add(-window)) {
			out = append(out, e)
		}
	}
	return out
}

// insertSorted adds t keeping entries oldest first (callers' clocks need not agree).
func insertSorted(entries []time.Time, t time.Time) []time.Time {
	i, _ := slices.BinarySearchFunc(entries, t, time.Time.Compare)
	return slices.Insert(entries, i, t)
}

// Admit implements budget.Store.
func (s *Store) Admit(ctx context.Context, registered string, now time.Time, _ string) (budget.Usage, error) {
	if err := ctx.Err(); err != nil {
		return budget.Usage{}, err
	}
	now = now.Truncate(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders = prune(s.orders, now, budget.OrdersWindow)
	certs := prune(s.certs[registered], now, budget.CertsWindow)
	s.certs[registered] = certs
	u := budget.Usage{Orders3h: len(s.orders), Certs7d: len(certs)}
	switch {
	case s.limits.OrdersPer3h > 0 && len(s.orders) >= s.limits.OrdersPer3h:
		u.RetryAt = s.orders[0].Add(budget.OrdersWindow)
		return u, nil
	case s.limits.CertsPerDomainPer7d > 0 && len(certs) >= s.limits.CertsPerDomainPer7d:
		u.RetryAt = certs[0].Add(budget.CertsWindow)
		return u, nil
	}
	s.orders = insertSorted(s.orders, now)
	u.Orders3h, u.Admitted = len(s.orders), true
	return u, nil
}

// Issued implements budget.Store.
func (s *Store) Issued(ctx context.Context, registered string, now time.Time, _ string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now = now.Truncate(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	certs := insertSorted(prune(s.certs[registered], now, budget.CertsWindow), now)
	s.certs[registered] = certs
	return len(certs), nil
}
