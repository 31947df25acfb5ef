// Package memchallenges is an in-process challenges.Store, for tests.
package memchallenges

import (
	"context"
	"sync"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/challenges"
)

// Store is an in-memory challenge store. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	entries map[string]item
}

type item struct {
	e       challenges.Entry
	expires time.Time
}

var _ challenges.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{entries: map[string]item{}} }

func key(kind challenges.Kind, name string) string { return string(kind) + "/" + name }

// Put implements challenges.Store.
func (s *Store) Put(ctx context.Context, e challenges.Entry, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key(e.Kind, e.Name)] = item{e: e, expires: time.Now().Add(ttl)}
	return nil
}

// Get implements challenges.Store.
func (s *Store) Get(ctx context.Context, kind challenges.Kind, name string) (challenges.Entry, error) {
	if err := ctx.Err(); err != nil {
		return challenges.Entry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.entries[key(kind, name)]
	if !ok || !time.Now().Before(it.expires) {
		return challenges.Entry{}, challenges.ErrNotFound
	}
	return it.e, nil
}

// Delete implements challenges.Store.
func (s *Store) Delete(ctx context.Context, kind challenges.Kind, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key(kind, name))
	return nil
}
