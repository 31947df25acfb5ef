// Package redisdelegation keeps the delegation zone's TXT values in Redis, so that every
// notary replica's built-in DNS server answers the same. Each label is one sorted set,
// `<prefix>:dns01:{<label>}`, members the values and scores their expiry (Unix ms); the
// key itself expires with its last value, so an order killed before its clean-up leaves
// nothing behind for long. Each label is its own hash tag: labels spread over a Redis
// Cluster.
package redisdelegation

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/services/notary/internal/delegation"
)

// Store is a Redis delegation store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	// now is the clock (time.Now); expiries are written and compared in client time.
	now func() time.Time
}

var _ delegation.Store = (*Store)(nil)

// New returns a store whose keys start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now}
}

func (s *Store) key(label string) string { return s.prefix + ":dns01:{" + label + "}" }

// addScript drops expired values, adds the value with the later of its old and new
// expiry (ZADD GT), and makes the key live as long as its longest-lived value.
var addScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)

// Add implements delegation.Store.
func (s *Store) Add(ctx context.Context, label, value string, ttl time.Duration) error {
	now := s.now()
	err := addScript.Run(ctx, s.rdb, []string{s.key(label)},
		now.UnixMilli(), now.Add(ttl).UnixMilli(), value).Err()
	if err != nil {
		return fmt.Errorf("store DNS-01 answer: %w", err)
	}
	return nil
}

// Remove implements delegation.Store.
func (s *Store) Remove(ctx context.Context, label, value string) error {
	if err := s.rdb.ZRem(ctx, s.key(label), value).Err(); err != nil {
		return fmt.Errorf("remove DNS-01 answer: %w", err)
	}
	return nil
}

// Values implements delegation.Store.
func (s *Store) Values(ctx context.Context, label string) ([]string, error) {
	vals, err := s.rdb.ZRangeByScore(ctx, s.key(label), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(s.now().UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read DNS-01 answers: %w", err)
	}
	if vals == nil {
		vals = []string{}
	}
	// By score, then lexically among equal scores: sort lexically, as the contract says.
	slices.Sort(vals)
	return vals, nil
}
