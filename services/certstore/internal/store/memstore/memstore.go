// Package memstore is the in-memory implementation of store.Store, for tests and
// single-process experiments. It keeps the whole contract (fencing, versions surviving
// deletes, atomic switches) under one mutex; ListDue sorts every entry, so unlike the
// Redis store its cost grows with the number of certificates.
package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portico-dev/portico/services/certstore/internal/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu     sync.Mutex
	certs  map[string]store.Certificate
	tombs  map[string]tombstone
	routes map[string]store.Route
}

// tombstone keeps what a deleted certificate leaves behind.
type tombstone struct {
	version, fence int64
	until          time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty store. now is the clock for tombstone expiry (time.Now if nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, certs: map[string]store.Certificate{}, tombs: map[string]tombstone{}, routes: map[string]store.Route{}}
}

func (s *Store) GetCertificate(ctx context.Context, name string) (store.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return store.Certificate{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.certs[name]
	if !ok {
		return store.Certificate{}, store.ErrNotFound
	}
	return c.Clone(), nil
}

// previous returns the version and token stored or remembered for name.
func (s *Store) previous(name string) (version, fence int64, exists bool) {
	if c, ok := s.certs[name]; ok {
		return c.Version, c.FencingToken, true
	}
	if t, ok := s.tombs[name]; ok && s.now().Before(t.until) {
		return t.version, t.fence, false
	}
	return 0, 0, false
}

func (s *Store) PutCertificate(ctx context.Context, c store.Certificate) (store.Certificate, []byte, error) {
	if err := ctx.Err(); err != nil {
		return store.Certificate{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	version, fence, exists := s.previous(c.Name)
	if c.FencingToken < fence {
		return store.Certificate{}, nil, store.ErrStaleFencing
	}
	var replaced []byte
	if exists {
		replaced = append([]byte(nil), s.certs[c.Name].KeyRef...)
	}
	c = c.Clone()
	c.Version = version + 1
	c.NotAfter = c.NotAfter.Truncate(time.Millisecond)
	c.RenewTime = c.RenewTime.Truncate(time.Millisecond)
	s.certs[c.Name] = c
	delete(s.tombs, c.Name)
	return c.Clone(), replaced, nil
}

func (s *Store) DeleteCertificate(ctx context.Context, name string, fencingToken int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.certs[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	if fencingToken < c.FencingToken {
		return nil, store.ErrStaleFencing
	}
	delete(s.certs, name)
	s.tombs[name] = tombstone{version: c.Version, fence: max(c.FencingToken, fencingToken), until: s.now().Add(store.TombstoneTTL)}
	return c.KeyRef, nil
}

func (s *Store) SwapKeyRef(ctx context.Context, name string, version int64, oldRef, newRef []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.certs[name]
	if !ok {
		return store.ErrNotFound
	}
	if c.Version != version || string(c.KeyRef) != string(oldRef) {
		return store.ErrConflict
	}
	c.KeyRef = append([]byte(nil), newRef...)
	s.certs[name] = c
	return nil
}

func (s *Store) GetServing(ctx context.Context, name string) (store.Serving, error) {
	if err := ctx.Err(); err != nil {
		return store.Serving{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out store.Serving
	if c, ok := s.certs[name]; ok {
		c = c.Clone()
		out.Certificate = &c
	}
	if r, ok := s.routes[name]; ok {
		out.Route = &r
	}
	return out, nil
}

func (s *Store) GetRoute(ctx context.Context, name string) (store.Route, error) {
	if err := ctx.Err(); err != nil {
		return store.Route{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes[name]
	if !ok {
		return store.Route{}, store.ErrNotFound
	}
	return r, nil
}

func (s *Store) SetRoute(ctx context.Context, r store.Route) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[r.Hostname] = r
	return nil
}

func (s *Store) DeleteRoute(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.routes[name]; !ok {
		return store.ErrNotFound
	}
	delete(s.routes, name)
	return nil
}

func (s *Store) ListDue(ctx context.Context, before time.Time, pageSize int, pageToken string) ([]store.Due, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := store.CheckPageSize(pageSize); err != nil {
		return nil, "", err
	}
	var cursor *store.DueCursor
	if pageToken != "" {
		c, err := store.DecodeDueCursor(pageToken)
		if err != nil {
			return nil, "", err
		}
		cursor = &c
	}
	s.mu.Lock()
	var due []store.Due
	for _, c := range s.certs {
		if c.RenewTime.Before(before) && (cursor == nil || cursor.After(c.RenewTime, c.Name)) {
			due = append(due, store.Due{Name: c.Name, Version: c.Version, NotAfter: c.NotAfter, RenewTime: c.RenewTime})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(due, func(a, b store.Due) int {
		if c := a.RenewTime.Compare(b.RenewTime); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(due) <= pageSize {
		return due, "", nil
	}
	due = due[:pageSize]
	last := due[len(due)-1]
	return due, store.EncodeDueCursor(store.DueCursor{RenewTime: last.RenewTime, Name: last.Name}), nil
}
