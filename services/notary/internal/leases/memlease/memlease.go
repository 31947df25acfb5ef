// Package memlease is an in-process leases.Store, for tests and single-process tools.
package memlease

import (
	"context"
	"sync"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/leases"
)

// Store is an in-memory lease store. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	leases map[string]entry
}

type entry struct {
	token   string
	expires time.Time
}

var _ leases.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{leases: map[string]entry{}} }

// Acquire implements leases.Store.
func (s *Store) Acquire(ctx context.Context, key string, ttl time.Duration) (leases.Lease, error) {
	if err := ctx.Err(); err != nil {
		return leases.Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if e, ok := s.leases[key]; ok && now.Before(e.expires) {
		return leases.Lease{}, leases.ErrHeld
	}
	l := leases.Lease{Key: key, Token: leases.NewToken(), Expires: now.Add(ttl)}
	s.leases[key] = entry{token: l.Token, expires: l.Expires}
	return l, nil
}

// Renew implements leases.Store.
func (s *Store) Renew(ctx context.Context, l leases.Lease, ttl time.Duration) (leases.Lease, error) {
	if err := ctx.Err(); err != nil {
		return leases.Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	e, ok := s.leases[l.Key]
	if !ok || e.token != l.Token || !now.Before(e.expires) {
		return leases.Lease{}, leases.ErrLost
	}
	l.Expires = now.Add(ttl)
	s.leases[l.Key] = entry{token: l.Token, expires: l.Expires}
	return l, nil
}

// Release implements leases.Store.
func (s *Store) Release(ctx context.Context, l leases.Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.leases[l.Key]
	if !ok || e.token != l.Token || !time.Now().Before(e.expires) {
		return leases.ErrLost
	}
	delete(s.leases, l.Key)
	return nil
}
