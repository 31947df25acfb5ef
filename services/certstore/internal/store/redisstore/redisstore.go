// Package redisstore is the Redis implementation of store.Store, laid out for Redis
// Cluster as well as a single node.
//
// # Keys
//
//	<prefix>:{<name>}:cert   hash: chain, key, not_after, renew, version, fence
//	<prefix>:{<name>}:route  hash: tenant, upstream, redirect
//	<prefix>:due             sorted set: name scored by renew time (Unix ms)
//
// The certificate and route of one name share the hash tag `{<name>}`, so each lives in
// one slot and every script touches keys of one tag only. The expiry index is its own
// key (its own slot) and is written outside the certificate scripts.
//
// A certificate record is one hash written by one Lua script (fencing check, version
// increment and every field together), so a reader's single HMGET sees either the old or
// the new record. A deleted record keeps only version and fence and expires after
// store.TombstoneTTL.
//
// # The expiry index
//
// PutCertificate lowers the index entry (ZADD LT) before the switch and again after it:
// an entry's score is never later than its record's renew time, so a crash between the
// steps leaves an entry that is early, never late or missing. ListDue re-reads each
// candidate's record, returns it only when the record is really due, and repairs the
// entry (raises it to the real renew time, or removes it when the record is gone). A
// repair re-reads the record afterwards and lowers the entry again if a put slipped in
// between, so a repair never leaves a late entry either.
package redisstore

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/services/certstore/internal/store"
)

// Store is a store.Store on Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ store.Store = (*Store)(nil)

// New returns a store whose keys start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) certKey(name string) string  { return s.prefix + ":{" + name + "}:cert" }
func (s *Store) routeKey(name string) string { return s.prefix + ":{" + name + "}:route" }
func (s *Store) dueKey() string              { return s.prefix + ":due" }

// Record fields.
const (
	fChain    = "chain"
	fKey      = "key"
	fNotAfter = "not_after"
	fRenew    = "renew"
	fVersion  = "version"
	fFence    = "fence"
)

// fenceLua compares fencing tokens exactly. They are int64 (the notary's exceed 2^53,
// see domains.Domain.FencingToken) and Lua numbers are doubles, which would make tokens
// a few versions apart equal; so they are compared as decimal strings (non-negative, no
// leading zeros: the shorter is smaller, equal lengths compare as text).
const fenceLua = `
local function below(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
`

// putScript switches a record to a new version. KEYS[1] the record; ARGV fence, chain,
// key ref, not_after ms, renew ms. Returns {-1} for a stale token, otherwise {version,
// replaced key ref or ""}.
var putScript = redis.NewScript(fenceLua + `
local cur = redis.call('HMGET', KEYS[1], 'fence', 'version', 'key')
if cur[1] and below(ARGV[1], cur[1]) then return {-1} end
local version = (tonumber(cur[2]) or 0) + 1
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'chain', ARGV[2], 'key', ARGV[3], 'not_after', ARGV[4], 'renew', ARGV[5], 'version', version, 'fence', ARGV[1])
return {version, cur[3] or ''}
`)

// deleteScript removes a record, keeping a tombstone. KEYS[1] the record; ARGV fence,
// tombstone TTL ms. Returns {0} not found, {-1} stale, {1, key ref}.
var deleteScript = redis.NewScript(fenceLua + `
local cur = redis.call('HMGET', KEYS[1], 'fence', 'key')
if not cur[2] then return {0} end
if below(ARGV[1], cur[1]) then return {-1} end
redis.call('HDEL', KEYS[1], 'chain', 'key', 'not_after', 'renew')
if below(cur[1], ARGV[1]) then redis.call('HSET', KEYS[1], 'fence', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, cur[2]}
`)

// swapScript replaces the key ref when version and ref still match. KEYS[1] the record;
// ARGV version, old ref, new ref. Returns 0 not found, -1 conflict, 1 swapped.
var swapScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'key')
if not cur[2] then return 0 end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'key', ARGV[3])
return 1
`)

// pageScript returns up to ARGV[4] index entries after the cursor (ARGV[1] score,
// ARGV[2] name; ARGV[2] empty for the start) with scores below ARGV[3], as
// {name, score, ...}. It finds the cursor by rank (O(log N)); only when the cursor's
// entry is gone does it count the ties at the cursor's score.
var pageScript = redis.NewScript(`
local start = 0
if ARGV[2] ~= '' then
  local rank = redis.call('ZRANK', KEYS[1], ARGV[2])
  local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if rank and tonumber(score) == tonumber(ARGV[1]) then
    start = rank + 1
  else
    start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
    local ties = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[1], 'BYSCORE')
    for _, m in ipairs(ties) do
      if m <= ARGV[2] then start = start + 1 end
    end
  end
end
local n = tonumber(ARGV[4])
local items = redis.call('ZRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
local out = {}
for i = 1, #items, 2 do
  if tonumber(items[i+1]) >= tonumber(ARGV[3]) then break end
  out[#out+1] = items[i]
  out[#out+1] = items[i+1]
end
return out
`)

func (s *Store) GetCertificate(ctx context.Context, name string) (store.Certificate, error) {
	vals, err := s.rdb.HMGet(ctx, s.certKey(name), fChain, fKey, fNotAfter, fRenew, fVersion, fFence).Result()
	if err != nil {
		return store.Certificate{}, fmt.Errorf("read certificate %s: %w", name, err)
	}
	return decodeCert(name, vals)
}

func decodeCert(name string, vals []any) (store.Certificate, error) {
	chain, _ := vals[0].(string)
	key, _ := vals[1].(string)
	if chain == "" || key == "" {
		return store.Certificate{}, store.ErrNotFound
	}
	c := store.Certificate{Name: name, KeyRef: []byte(key)}
	var err error
	if c.Chain, err = splitDER([]byte(chain)); err != nil {
		return store.Certificate{}, fmt.Errorf("certificate %s: stored chain: %w", name, err)
	}
	ints := make([]int64, 4)
	for i, v := range vals[2:] {
		str, _ := v.(string)
		if ints[i], err = strconv.ParseInt(str, 10, 64); err != nil {
			return store.Certificate{}, fmt.Errorf("certificate %s: stored field %d: %w", name, i+2, err)
		}
	}
	c.NotAfter, c.RenewTime = time.UnixMilli(ints[0]), time.UnixMilli(ints[1])
	c.Version, c.FencingToken = ints[2], ints[3]
	return c, nil
}

// joinDER concatenates a chain; DER is self-delimiting, so splitDER recovers it.
func joinDER(chain [][]byte) []byte {
	var out []byte
	for _, der := range chain {
		out = append(out, der...)
	}
	return out
}

func splitDER(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(b, &raw)
		if err != nil {
			return nil, err
		}
		out = append(out, raw.FullBytes)
		b = rest
	}
	return out, nil
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (s *Store) PutCertificate(ctx context.Context, c store.Certificate) (store.Certificate, []byte, error) {
	if len(c.KeyRef) == 0 {
		return store.Certificate{}, nil, errors.New("certificate without a key reference")
	}
	c = c.Clone()
	c.NotAfter = c.NotAfter.Truncate(time.Millisecond)
	c.RenewTime = c.RenewTime.Truncate(time.Millisecond)
	score := float64(c.RenewTime.UnixMilli())
	// Lower the index entry first: a crash after the switch must not leave it late.
	if err := s.rdb.ZAddLT(ctx, s.dueKey(), redis.Z{Score: score, Member: c.Name}).Err(); err != nil {
		return store.Certificate{}, nil, fmt.Errorf("index certificate %s: %w", c.Name, err)
	}
	res, err := putScript.Run(ctx, s.rdb, []string{s.certKey(c.Name)},
		c.FencingToken, joinDER(c.Chain), c.KeyRef, ms(c.NotAfter), ms(c.RenewTime)).Slice()
	if err != nil {
		return store.Certificate{}, nil, fmt.Errorf("store certificate %s: %w", c.Name, err)
	}
	if res[0].(int64) < 0 {
		return store.Certificate{}, nil, store.ErrStaleFencing
	}
	c.Version = res[0].(int64)
	var replaced []byte
	if ref, _ := res[1].(string); ref != "" {
		replaced = []byte(ref)
	}
	if err := s.rdb.ZAddLT(ctx, s.dueKey(), redis.Z{Score: score, Member: c.Name}).Err(); err != nil {
		return store.Certificate{}, nil, fmt.Errorf("index certificate %s: %w", c.Name, err)
	}
	return c, replaced, nil
}

func (s *Store) DeleteCertificate(ctx context.Context, name string, fencingToken int64) ([]byte, error) {
	res, err := deleteScript.Run(ctx, s.rdb, []string{s.certKey(name)}, fencingToken, store.TombstoneTTL.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("delete certificate %s: %w", name, err)
	}
	switch res[0].(int64) {
	case 0:
		return nil, store.ErrNotFound
	case -1:
		return nil, store.ErrStaleFencing
	}
	ref, _ := res[1].(string)
	// After the record is gone; a crash before this leaves an entry ListDue removes.
	if err := s.rdb.ZRem(ctx, s.dueKey(), name).Err(); err != nil {
		return nil, fmt.Errorf("unindex certificate %s: %w", name, err)
	}
	return []byte(ref), nil
}

func (s *Store) SwapKeyRef(ctx context.Context, name string, version int64, oldRef, newRef []byte) error {
	res, err := swapScript.Run(ctx, s.rdb, []string{s.certKey(name)}, version, oldRef, newRef).Int()
	if err != nil {
		return fmt.Errorf("swap key reference of %s: %w", name, err)
	}
	switch res {
	case 0:
		return store.ErrNotFound
	case -1:
		return store.ErrConflict
	}
	return nil
}

// Route fields.
const (
	fTenant   = "tenant"
	fUpstream = "upstream"
	fRedirect = "redirect"
)

// GetServing reads the certificate and the route of name in one pipelined round trip;
// both keys share the name's hash tag, so on Redis Cluster they are on one node.
func (s *Store) GetServing(ctx context.Context, name string) (store.Serving, error) {
	pipe := s.rdb.Pipeline()
	certCmd := pipe.HMGet(ctx, s.certKey(name), fChain, fKey, fNotAfter, fRenew, fVersion, fFence)
	routeCmd := pipe.HMGet(ctx, s.routeKey(name), fTenant, fUpstream, fRedirect)
	if _, err := pipe.Exec(ctx); err != nil {
		return store.Serving{}, fmt.Errorf("read certificate and route %s: %w", name, err)
	}
	var out store.Serving
	c, err := decodeCert(name, certCmd.Val())
	switch {
	case err == nil:
		out.Certificate = &c
	case !errors.Is(err, store.ErrNotFound):
		return store.Serving{}, err
	}
	r, err := decodeRoute(name, routeCmd.Val())
	switch {
	case err == nil:
		out.Route = &r
	case !errors.Is(err, store.ErrNotFound):
		return store.Serving{}, err
	}
	return out, nil
}

func (s *Store) GetRoute(ctx context.Context, name string) (store.Route, error) {
	vals, err := s.rdb.HMGet(ctx, s.routeKey(name), fTenant, fUpstream, fRedirect).Result()
	if err != nil {
		return store.Route{}, fmt.Errorf("read route %s: %w", name, err)
	}
	return decodeRoute(name, vals)
}

func decodeRoute(name string, vals []any) (store.Route, error) {
	redirect, ok := vals[2].(string)
	if !ok {
		return store.Route{}, store.ErrNotFound
	}
	tenant, _ := vals[0].(string)
	upstream, _ := vals[1].(string)
	return store.Route{Hostname: name, TenantID: tenant, Upstream: upstream, RedirectHTTPS: redirect == "1"}, nil
}

func (s *Store) SetRoute(ctx context.Context, r store.Route) error {
	redirect := "0"
	if r.RedirectHTTPS {
		redirect = "1"
	}
	// Every field is written, so one HSET replaces the whole route atomically.
	if err := s.rdb.HSet(ctx, s.routeKey(r.Hostname), fTenant, r.TenantID, fUpstream, r.Upstream, fRedirect, redirect).Err(); err != nil {
		return fmt.Errorf("store route %s: %w", r.Hostname, err)
	}
	return nil
}

func (s *Store) DeleteRoute(ctx context.Context, name string) error {
	n, err := s.rdb.Del(ctx, s.routeKey(name)).Result()
	if err != nil {
		return fmt.Errorf("delete route %s: %w", name, err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) ListDue(ctx context.Context, before time.Time, pageSize int, pageToken string) ([]store.Due, string, error) {
	if err := store.CheckPageSize(pageSize); err != nil {
		return nil, "", err
	}
	var cursor store.DueCursor
	if pageToken != "" {
		c, err := store.DecodeDueCursor(pageToken)
		if err != nil {
			return nil, "", err
		}
		cursor = c
	}
	var out []store.Due
	for len(out) < pageSize {
		want := pageSize - len(out)
		items, err := pageScript.Run(ctx, s.rdb, []string{s.dueKey()},
			ms(cursor.RenewTime), cursor.Name, ms(before), want).StringSlice()
		if err != nil {
			return nil, "", fmt.Errorf("read expiry index: %w", err)
		}
		n := len(items) / 2
		if n == 0 {
			return out, "", nil
		}
		names := make([]string, n)
		for i := range n {
			names[i] = items[2*i]
		}
		due, err := s.recheck(ctx, names, items, before)
		if err != nil {
			return nil, "", err
		}
		out = append(out, due...)
		score, _ := strconv.ParseFloat(items[2*n-1], 64)
		cursor = store.DueCursor{RenewTime: time.UnixMilli(int64(score)), Name: names[n-1]}
		if n < want {
			return out, "", nil
		}
	}
	return out, store.EncodeDueCursor(cursor), nil
}

// recheck reads the records of index candidates (one pipelined round trip), returns
// those really due, and repairs the entries that disagree with their record.
func (s *Store) recheck(ctx context.Context, names, items []string, before time.Time) ([]store.Due, error) {
	records, err := s.readRecords(ctx, names)
	if err != nil {
		return nil, err
	}
	var out []store.Due
	for i, name := range names {
		rec, ok := records[i]
		if ok && rec.RenewTime.Before(before) {
			out = append(out, store.Due{Name: name, Version: rec.Version, NotAfter: rec.NotAfter, RenewTime: rec.RenewTime})
		}
		score, _ := strconv.ParseFloat(items[2*i+1], 64)
		if !ok || float64(rec.RenewTime.UnixMilli()) != score {
			if err := s.repair(ctx, name, rec, ok); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

type recordTimes struct {
	NotAfter, RenewTime time.Time
	Version             int64
}

func (s *Store) readRecords(ctx context.Context, names []string) (map[int]recordTimes, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.HMGet(ctx, s.certKey(name), fKey, fNotAfter, fRenew, fVersion)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read indexed records: %w", err)
	}
	out := make(map[int]recordTimes, len(names))
	for i, cmd := range cmds {
		vals := cmd.Val()
		if key, _ := vals[0].(string); key == "" {
			continue
		}
		var ints [3]int64
		for j, v := range vals[1:] {
			str, _ := v.(string)
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("certificate %s: stored field: %w", names[i], err)
			}
			ints[j] = n
		}
		out[i] = recordTimes{NotAfter: time.UnixMilli(ints[0]), RenewTime: time.UnixMilli(ints[1]), Version: ints[2]}
	}
	return out, nil
}

// repair makes the index entry of name agree with the record read (rec, exists), then
// re-reads the record and lowers the entry again if a put came in meanwhile.
func (s *Store) repair(ctx context.Context, name string, rec recordTimes, exists bool) error {
	var err error
	if exists {
		err = s.rdb.ZAdd(ctx, s.dueKey(), redis.Z{Score: float64(rec.RenewTime.UnixMilli()), Member: name}).Err()
	} else {
		err = s.rdb.ZRem(ctx, s.dueKey(), name).Err()
	}
	if err != nil {
		return fmt.Errorf("repair expiry index entry %s: %w", name, err)
	}
	again, err := s.readRecords(ctx, []string{name})
	if err != nil {
		return err
	}
	now, ok := again[0]
	if !ok || (exists && now.Version == rec.Version) {
		return nil
	}
	if err := s.rdb.ZAddLT(ctx, s.dueKey(), redis.Z{Score: float64(now.RenewTime.UnixMilli()), Member: name}).Err(); err != nil {
		return fmt.Errorf("repair expiry index entry %s: %w", name, err)
	}
	return nil
}
