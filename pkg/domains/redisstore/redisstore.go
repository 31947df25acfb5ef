// Package redisstore keeps tenants and domains in Redis (single node or Cluster).
//
// Layout, for a key prefix P (every key carries the hash tag {P}, so each Lua script
// touches one Cluster slot; the control-plane records are small, about 1 KiB a domain, so
// one slot holds millions of them, while certificates and keys, the bulk, live in
// certstore's own keys):
//
//	{P}:d:<hostname>          hash  v=version t=tenant s=status j=JSON record
//	{P}:all                   zset  every hostname (score 0, ordered by name)
//	{P}:as:<status>           zset  hostnames in a status
//	{P}:td:<tenant>           zset  a tenant's hostnames
//	{P}:ts:<tenant>:<status>  zset  a tenant's hostnames in a status
//	{P}:due                   zset  hostname scored by NextAttemptAt (Unix µs); absent when zero
//	{P}:t:<tenant>            hash  j=JSON tenant k=key hash
//	{P}:k:<key hash>          string tenant ID
//	{P}:tenants               zset  tenant IDs (score 0, ordered by ID)
//	{P}:vt:<tenant>           hash  registered domain -> verification token
//
// Every write that changes a record and its indexes is one Lua script, so the record and
// its indexes never disagree, and compare-and-swap on the version happens inside it.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/pkg/domains"
)

// Store is a domains.Store on Redis.
type Store struct {
	rdb redis.UniversalClient
	tag string // "{prefix}"
}

var _ domains.Store = (*Store)(nil)

// New returns a store whose keys start with "{prefix}:".
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, tag: "{" + prefix + "}"}
}

func (s *Store) domainKey(host string) string       { return s.tag + ":d:" + host }
func (s *Store) allKey() string                     { return s.tag + ":all" }
func (s *Store) statusKey(st domains.Status) string { return s.tag + ":as:" + strconv.Itoa(int(st)) }
func (s *Store) tenantDomainsKey(t string) string   { return s.tag + ":td:" + t }
func (s *Store) tenantStatusKey(t string, st domains.Status) string {
	return s.tag + ":ts:" + t + ":" + strconv.Itoa(int(st))
}
func (s *Store) dueKey() string                 { return s.tag + ":due" }
func (s *Store) tenantKey(id string) string     { return s.tag + ":t:" + id }
func (s *Store) keyHashKey(h string) string     { return s.tag + ":k:" + h }
func (s *Store) tenantsKey() string             { return s.tag + ":tenants" }
func (s *Store) tokensKey(tenant string) string { return s.tag + ":vt:" + tenant }

// domainKeys are the keys every domain script declares: the record, the global and
// due indexes, the tenant's index, then the global and the tenant's set for each status
// (statuses 1..8 at KEYS[5..12] and KEYS[13..20] in Lua's 1-based numbering).
func (s *Store) domainKeys(host, tenant string) []string {
	keys := []string{s.domainKey(host), s.allKey(), s.dueKey(), s.tenantDomainsKey(tenant)}
	for _, st := range domains.AllStatuses() {
		keys = append(keys, s.statusKey(st))
	}
	for _, st := range domains.AllStatuses() {
		keys = append(keys, s.tenantStatusKey(tenant, st))
	}
	return keys
}

// dueScore is the due-index score of t: Unix microseconds, or "" for none.
func dueScore(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

const indexLua = `
local function statusKeys(s) return KEYS[4 + s], KEYS[12 + s] end
local function index(host, status, due)
  redis.call('ZADD', KEYS[2], 0, host)
  redis.call('ZADD', KEYS[4], 0, host)
  local g, t = statusKeys(status)
  redis.call('ZADD', g, 0, host)
  redis.call('ZADD', t, 0, host)
  if due == '' then redis.call('ZREM', KEYS[3], host) else redis.call('ZADD', KEYS[3], due, host) end
end
local function unindex(host, status)
  redis.call('ZREM', KEYS[2], host)
  redis.call('ZREM', KEYS[4], host)
  local g, t = statusKeys(status)
  redis.call('ZREM', g, host)
  redis.call('ZREM', t, host)
  redis.call('ZREM', KEYS[3], host)
end
`

// ARGV: host, tenant, status, json, due. Returns 1, or 0 when the hostname is taken.
var createDomainScript = redis.NewScript(indexLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 't', ARGV[2], 's', ARGV[3], 'j', ARGV[4])
index(ARGV[1], tonumber(ARGV[3]), ARGV[5])
return 1
`)

// ARGV: host, expected version, tenant, status, json, due. Returns the new version, -1 when
// missing, -2 on a version or tenant mismatch.
var updateDomainScript = redis.NewScript(indexLua + `
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 's')
if not cur[1] then return -1 end
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then return -2 end
local old, new = tonumber(cur[3]), tonumber(ARGV[4])
if old ~= new then
  local og, ot = statusKeys(old)
  redis.call('ZREM', og, ARGV[1])
  redis.call('ZREM', ot, ARGV[1])
end
local v = tonumber(ARGV[2]) + 1
redis.call('HSET', KEYS[1], 'v', v, 's', ARGV[4], 'j', ARGV[5])
index(ARGV[1], new, ARGV[6])
return v
`)

// ARGV: host, expected version. Returns 1, -1 when missing, -2 on a version mismatch.
var deleteDomainScript = redis.NewScript(indexLua + `
local cur = redis.call('HMGET', KEYS[1], 'v', 's')
if not cur[1] then return -1 end
if cur[1] ~= ARGV[2] then return -2 end
redis.call('DEL', KEYS[1])
unindex(ARGV[1], tonumber(cur[2]))
return 1
`)

// CreateDomain implements domains.DomainStore.
func (s *Store) CreateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	d.Version = 1
	j, err := json.Marshal(domains.ToStored(d))
	if err != nil {
		return domains.Domain{}, err
	}
	n, err := createDomainScript.Run(ctx, s.rdb, s.domainKeys(d.Hostname, d.TenantID),
		d.Hostname, d.TenantID, int(d.Status), j, dueScore(d.NextAttemptAt)).Int()
	if err != nil {
		return domains.Domain{}, fmt.Errorf("create domain %q: %w", d.Hostname, err)
	}
	if n == 0 {
		return domains.Domain{}, fmt.Errorf("domain %q: %w", d.Hostname, domains.ErrAlreadyExists)
	}
	d.Certificate.DNSNames = append([]string(nil), d.Certificate.DNSNames...)
	return d, nil
}

// GetDomain implements domains.DomainStore.
func (s *Store) GetDomain(ctx context.Context, hostname string) (domains.Domain, error) {
	vals, err := s.rdb.HMGet(ctx, s.domainKey(hostname), "v", "j").Result()
	if err != nil {
		return domains.Domain{}, fmt.Errorf("get domain %q: %w", hostname, err)
	}
	return decodeDomain(hostname, vals)
}

func decodeDomain(hostname string, vals []any) (domains.Domain, error) {
	v, _ := vals[0].(string)
	j, _ := vals[1].(string)
	if v == "" || j == "" {
		return domains.Domain{}, fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	}
	version, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return domains.Domain{}, fmt.Errorf("domain %q: bad stored version %q", hostname, v)
	}
	var r domains.Stored
	if err := json.Unmarshal([]byte(j), &r); err != nil {
		return domains.Domain{}, fmt.Errorf("domain %q: bad stored record: %w", hostname, err)
	}
	return r.Domain(version), nil
}

// UpdateDomain implements domains.DomainStore.
func (s *Store) UpdateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	j, err := json.Marshal(domains.ToStored(d))
	if err != nil {
		return domains.Domain{}, err
	}
	n, err := updateDomainScript.Run(ctx, s.rdb, s.domainKeys(d.Hostname, d.TenantID),
		d.Hostname, strconv.FormatInt(d.Version, 10), d.TenantID, int(d.Status), j, dueScore(d.NextAttemptAt)).Int64()
	if err != nil {
		return domains.Domain{}, fmt.Errorf("update domain %q: %w", d.Hostname, err)
	}
	switch n {
	case -1:
		return domains.Domain{}, fmt.Errorf("domain %q: %w", d.Hostname, domains.ErrNotFound)
	case -2:
		return domains.Domain{}, fmt.Errorf("domain %q changed since version %d: %w", d.Hostname, d.Version, domains.ErrConflict)
	}
	d.Version = n
	d.Certificate.DNSNames = append([]string(nil), d.Certificate.DNSNames...)
	return d, nil
}

// DeleteDomain implements domains.DomainStore.
func (s *Store) DeleteDomain(ctx context.Context, hostname string, version int64) error {
	// The tenant's index keys must be declared, so read whose domain it is first; the
	// script's version check makes the read safe (a tenant never changes).
	tenant, err := s.rdb.HGet(ctx, s.domainKey(hostname), "t").Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete domain %q: %w", hostname, err)
	}
	n, err := deleteDomainScript.Run(ctx, s.rdb, s.domainKeys(hostname, tenant), hostname, strconv.FormatInt(version, 10)).Int()
	if err != nil {
		return fmt.Errorf("delete domain %q: %w", hostname, err)
	}
	switch n {
	case -1:
		return fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	case -2:
		return fmt.Errorf("domain %q changed since version %d: %w", hostname, version, domains.ErrConflict)
	}
	return nil
}

// ListDomains implements domains.DomainStore.
func (s *Store) ListDomains(ctx context.Context, q domains.ListQuery) ([]domains.Domain, error) {
	index := s.allKey()
	switch {
	case q.TenantID != "" && q.Status != 0:
		index = s.tenantStatusKey(q.TenantID, q.Status)
	case q.TenantID != "":
		index = s.tenantDomainsKey(q.TenantID)
	case q.Status != 0:
		index = s.statusKey(q.Status)
	}
	out := make([]domains.Domain, 0, q.Limit)
	after := q.After
	// A domain deleted between reading the index and reading the record is skipped; keep
	// reading so a page is short only at the end of the index.
	for len(out) < q.Limit {
		want := q.Limit - len(out)
		start := "-"
		if after != "" {
			start = "(" + after
		}
		names, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: index, Start: start, Stop: "+", ByLex: true, Count: int64(want)}).Result()
		if err != nil {
			return nil, fmt.Errorf("list domains: %w", err)
		}
		if len(names) == 0 {
			break
		}
		found, err := s.getMany(ctx, names)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
		after = names[len(names)-1]
		if len(names) < want {
			break
		}
	}
	return out, nil
}

func (s *Store) getMany(ctx context.Context, names []string) ([]domains.Domain, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.HMGet(ctx, s.domainKey(name), "v", "j")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	out := make([]domains.Domain, 0, len(names))
	for i, cmd := range cmds {
		d, err := decodeDomain(names[i], cmd.Val())
		if errors.Is(err, domains.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// DueDomains implements domains.DomainStore.
func (s *Store) DueDomains(ctx context.Context, before time.Time, limit int) ([]string, error) {
	names, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.dueKey(), Start: "-inf", Stop: strconv.FormatInt(before.UnixMicro(), 10), ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("due domains: %w", err)
	}
	return names, nil
}

// VerificationToken implements domains.DomainStore.
func (s *Store) VerificationToken(ctx context.Context, tenantID, registeredDomain, candidate string) (string, error) {
	key := s.tokensKey(tenantID)
	pipe := s.rdb.TxPipeline()
	pipe.HSetNX(ctx, key, registeredDomain, candidate)
	get := pipe.HGet(ctx, key, registeredDomain)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("verification token: %w", err)
	}
	return get.Val(), nil
}

// ARGV: id, key hash, json. Returns 1, -1 when the ID is taken, -2 when the key hash is.
var createTenantScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('HSET', KEYS[1], 'j', ARGV[3], 'k', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return 1
`)

// KEYS: tenant, new key, old key. ARGV: id, new hash, old hash, json. Returns 1, -1 when
// missing, -2 when the new hash is taken, -3 when the key changed since it was read.
var rotateKeyScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'k')
if not cur then return -1 end
if cur ~= ARGV[3] then return -3 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'j', ARGV[4], 'k', ARGV[2])
return 1
`)

// KEYS: tenant, key, tenants, tokens. ARGV: id, key hash. Returns 1, -1 when missing,
// -3 when the key changed since it was read.
var deleteTenantScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'k')
if not cur then return -1 end
if cur ~= ARGV[2] then return -3 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// CreateTenant implements domains.TenantStore.
func (s *Store) CreateTenant(ctx context.Context, t domains.Tenant) error {
	j, err := json.Marshal(toTenantRecord(t))
	if err != nil {
		return err
	}
	n, err := createTenantScript.Run(ctx, s.rdb, []string{s.tenantKey(t.ID), s.keyHashKey(t.KeyHash), s.tenantsKey()}, t.ID, t.KeyHash, j).Int()
	if err != nil {
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	switch n {
	case -1:
		return fmt.Errorf("tenant %q: %w", t.ID, domains.ErrAlreadyExists)
	case -2:
		return fmt.Errorf("tenant key: %w", domains.ErrAlreadyExists)
	}
	return nil
}

// GetTenant implements domains.TenantStore.
func (s *Store) GetTenant(ctx context.Context, id string) (domains.Tenant, error) {
	j, err := s.rdb.HGet(ctx, s.tenantKey(id), "j").Result()
	if errors.Is(err, redis.Nil) {
		return domains.Tenant{}, fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
	}
	if err != nil {
		return domains.Tenant{}, fmt.Errorf("get tenant %q: %w", id, err)
	}
	var r tenantRecord
	if err := json.Unmarshal([]byte(j), &r); err != nil {
		return domains.Tenant{}, fmt.Errorf("tenant %q: bad stored record: %w", id, err)
	}
	return r.tenant(), nil
}

// TenantByKeyHash implements domains.TenantStore.
func (s *Store) TenantByKeyHash(ctx context.Context, keyHash string) (domains.Tenant, error) {
	id, err := s.rdb.Get(ctx, s.keyHashKey(keyHash)).Result()
	if errors.Is(err, redis.Nil) {
		return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrNotFound)
	}
	if err != nil {
		return domains.Tenant{}, fmt.Errorf("resolve tenant key: %w", err)
	}
	t, err := s.GetTenant(ctx, id)
	if err != nil {
		return domains.Tenant{}, err
	}
	if t.KeyHash != keyHash { // rotated between the two reads
		return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrNotFound)
	}
	return t, nil
}

// ListTenants implements domains.TenantStore.
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]domains.Tenant, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.tenantsKey(), Start: start, Stop: "+", ByLex: true, Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out := make([]domains.Tenant, 0, len(ids))
	for _, id := range ids {
		t, err := s.GetTenant(ctx, id)
		if errors.Is(err, domains.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// RotateTenantKey implements domains.TenantStore.
func (s *Store) RotateTenantKey(ctx context.Context, id, newKeyHash string, at time.Time) (domains.Tenant, error) {
	for {
		t, err := s.GetTenant(ctx, id)
		if err != nil {
			return domains.Tenant{}, err
		}
		old := t.KeyHash
		t.KeyHash, t.KeyRotatedAt = newKeyHash, at
		j, err := json.Marshal(toTenantRecord(t))
		if err != nil {
			return domains.Tenant{}, err
		}
		n, err := rotateKeyScript.Run(ctx, s.rdb, []string{s.tenantKey(id), s.keyHashKey(newKeyHash), s.keyHashKey(old)}, id, newKeyHash, old, j).Int()
		if err != nil {
			return domains.Tenant{}, fmt.Errorf("rotate key of tenant %q: %w", id, err)
		}
		switch n {
		case 1:
			return t, nil
		case -1:
			return domains.Tenant{}, fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
		case -2:
			return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrAlreadyExists)
		}
		// -3: rotated concurrently; read again.
	}
}

// DeleteTenant implements domains.TenantStore.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	for {
		t, err := s.GetTenant(ctx, id)
		if err != nil {
			return err
		}
		n, err := deleteTenantScript.Run(ctx, s.rdb, []string{s.tenantKey(id), s.keyHashKey(t.KeyHash), s.tenantsKey(), s.tokensKey(id)}, id, t.KeyHash).Int()
		if err != nil {
			return fmt.Errorf("delete tenant %q: %w", id, err)
		}
		switch n {
		case 1:
			return nil
		case -1:
			return fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
		}
	}
}
