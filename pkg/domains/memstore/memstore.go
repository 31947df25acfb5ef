// Package memstore is an in-memory domains.Store for unit tests and single-process tools.
// It keeps the full contract (compare-and-swap, uniqueness, indexes) inside one process.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portico-dev/portico/pkg/domains"
)

// Store is an in-memory domains.Store. The zero value is not usable; call New.
type Store struct {
	mu        sync.Mutex
	tenants   map[string]domains.Tenant
	keyHashes map[string]string // key hash -> tenant ID
	domains   map[string]domains.Domain
	tokens    map[string]map[string]string // tenant ID -> registered domain -> token
}

var _ domains.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		tenants:   map[string]domains.Tenant{},
		keyHashes: map[string]string{},
		domains:   map[string]domains.Domain{},
		tokens:    map[string]map[string]string{},
	}
}

// CreateTenant implements domains.TenantStore.
func (s *Store) CreateTenant(ctx context.Context, t domains.Tenant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenants[t.ID]; ok {
		return fmt.Errorf("tenant %q: %w", t.ID, domains.ErrAlreadyExists)
	}
	if _, ok := s.keyHashes[t.KeyHash]; ok {
		return fmt.Errorf("tenant key: %w", domains.ErrAlreadyExists)
	}
	s.tenants[t.ID] = t
	s.keyHashes[t.KeyHash] = t.ID
	return nil
}

// GetTenant implements domains.TenantStore.
func (s *Store) GetTenant(ctx context.Context, id string) (domains.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return domains.Tenant{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return domains.Tenant{}, fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
	}
	return t, nil
}

// TenantByKeyHash implements domains.TenantStore.
func (s *Store) TenantByKeyHash(ctx context.Context, keyHash string) (domains.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return domains.Tenant{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.keyHashes[keyHash]
	if !ok {
		return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrNotFound)
	}
	return s.tenants[id], nil
}

// ListTenants implements domains.TenantStore.
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]domains.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.tenants))
	for id := range s.tenants {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]domains.Tenant, len(ids))
	for i, id := range ids {
		out[i] = s.tenants[id]
	}
	return out, nil
}

// RotateTenantKey implements domains.TenantStore.
func (s *Store) RotateTenantKey(ctx context.Context, id, newKeyHash string, at time.Time) (domains.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return domains.Tenant{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return domains.Tenant{}, fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
	}
	if _, taken := s.keyHashes[newKeyHash]; taken {
		return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrAlreadyExists)
	}
	delete(s.keyHashes, t.KeyHash)
	t.KeyHash, t.KeyRotatedAt = newKeyHash, at
	s.tenants[id] = t
	s.keyHashes[newKeyHash] = id
	return t, nil
}

// DeleteTenant implements domains.TenantStore.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
	}
	delete(s.keyHashes, t.KeyHash)
	delete(s.tenants, id)
	delete(s.tokens, id)
	return nil
}

// CreateDomain implements domains.DomainStore.
func (s *Store) CreateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	if err := ctx.Err(); err != nil {
		return domains.Domain{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.domains[d.Hostname]; ok {
		return domains.Domain{}, fmt.Errorf("domain %q: %w", d.Hostname, domains.ErrAlreadyExists)
	}
	d.Version = 1
	d = clone(d)
	s.domains[d.Hostname] = d
	return clone(d), nil
}

// GetDomain implements domains.DomainStore.
func (s *Store) GetDomain(ctx context.Context, hostname string) (domains.Domain, error) {
	if err := ctx.Err(); err != nil {
		return domains.Domain{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.domains[hostname]
	if !ok {
		return domains.Domain{}, fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	}
	return clone(d), nil
}

// UpdateDomain implements domains.DomainStore.
func (s *Store) UpdateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	if err := ctx.Err(); err != nil {
		return domains.Domain{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.domains[d.Hostname]
	if !ok {
		return domains.Domain{}, fmt.Errorf("domain %q: %w", d.Hostname, domains.ErrNotFound)
	}
	if cur.Version != d.Version || cur.TenantID != d.TenantID {
		return domains.Domain{}, fmt.Errorf("domain %q at version %d, not %d: %w", d.Hostname, cur.Version, d.Version, domains.ErrConflict)
	}
	d.Version++
	s.domains[d.Hostname] = clone(d)
	return clone(d), nil
}

// DeleteDomain implements domains.DomainStore.
func (s *Store) DeleteDomain(ctx context.Context, hostname string, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.domains[hostname]
	if !ok {
		return fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	}
	if cur.Version != version {
		return fmt.Errorf("domain %q at version %d, not %d: %w", hostname, cur.Version, version, domains.ErrConflict)
	}
	delete(s.domains, hostname)
	return nil
}

// ListDomains implements domains.DomainStore.
func (s *Store) ListDomains(ctx context.Context, q domains.ListQuery) ([]domains.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name, d := range s.domains {
		if name > q.After && (q.TenantID == "" || d.TenantID == q.TenantID) && (q.Status == 0 || d.Status == q.Status) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > q.Limit {
		names = names[:q.Limit]
	}
	out := make([]domains.Domain, len(names))
	for i, name := range names {
		out[i] = clone(s.domains[name])
	}
	return out, nil
}

// DueDomains implements domains.DomainStore.
func (s *Store) DueDomains(ctx context.Context, before time.Time, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []domains.Domain
	for _, d := range s.domains {
		if !d.NextAttemptAt.IsZero() && !d.NextAttemptAt.After(before) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b domains.Domain) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return strings.Compare(a.Hostname, b.Hostname)
	})
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]string, len(due))
	for i, d := range due {
		out[i] = d.Hostname
	}
	return out, nil
}

// VerificationToken implements domains.DomainStore.
func (s *Store) VerificationToken(ctx context.Context, tenantID, registeredDomain, candidate string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byDomain := s.tokens[tenantID]
	if byDomain == nil {
		byDomain = map[string]string{}
		s.tokens[tenantID] = byDomain
	}
	if tok, ok := byDomain[registeredDomain]; ok {
		return tok, nil
	}
	byDomain[registeredDomain] = candidate
	return candidate, nil
}

// clone copies the slices inside a domain so callers never share memory with the store.
func clone(d domains.Domain) domains.Domain {
	d.Certificate.DNSNames = slices.Clone(d.Certificate.DNSNames)
	return d
}
