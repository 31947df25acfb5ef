// Package memdelegation is an in-process delegation.Store, for tests and single-process
// runs.
package memdelegation

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/delegation"
)

// Store is an in-memory delegation store. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	labels map[string]map[string]time.Time // label -> value -> expiry
}

var _ delegation.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{labels: map[string]map[string]time.Time{}} }

// Add implements delegation.Store.
func (s *Store) Add(ctx context.Context, label, value string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.labels[label]
	if set == nil {
		set = map[string]time.Time{}
		s.labels[label] = set
	}
	if exp := time.Now().Add(ttl); exp.After(set[value]) {
		set[value] = exp
	}
	return nil
}

// Remove implements delegation.Store.
func (s *Store) Remove(ctx context.Context, label, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.labels[label], value)
	if len(s.labels[label]) == 0 {
		delete(s.labels, label)
	}
	return nil
}

// Values implements delegation.Store.
func (s *Store) Values(ctx context.Context, label string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := []string{}
	for v, exp := range s.labels[label] {
		if exp.After(now) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, nil
}
