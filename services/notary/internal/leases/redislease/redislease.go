// Package redislease keeps leases in Redis: Acquire is one SET NX PX, Renew and Release
// are Lua scripts that act only while the stored token is the caller's. Each lease is
// one key, `<prefix>:lease:{<hostname>}`, its own hash tag, so leases spread over a Redis
// Cluster's slots.
package redislease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/services/notary/internal/leases"
)

// Store is a Redis lease store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ leases.Store = (*Store)(nil)

// New returns a store whose keys start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) key(k string) string { return s.prefix + ":lease:{" + k + "}" }

// renewScript extends the key's expiry when it still holds the caller's token.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// releaseScript deletes the key when it still holds the caller's token.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// Acquire implements leases.Store.
func (s *Store) Acquire(ctx context.Context, key string, ttl time.Duration) (leases.Lease, error) {
	l := leases.Lease{Key: key, Token: leases.NewToken(), Expires: time.Now().Add(ttl)}
	err := s.rdb.SetArgs(ctx, s.key(key), l.Token, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return leases.Lease{}, leases.ErrHeld
	case err != nil:
		return leases.Lease{}, fmt.Errorf("acquire lease %q: %w", key, err)
	}
	return l, nil
}

// Renew implements leases.Store.
func (s *Store) Renew(ctx context.Context, l leases.Lease, ttl time.Duration) (leases.Lease, error) {
	expires := time.Now().Add(ttl)
	n, err := renewScript.Run(ctx, s.rdb, []string{s.key(l.Key)}, l.Token, ttl.Milliseconds()).Int()
	if err != nil {
		return leases.Lease{}, fmt.Errorf("renew lease %q: %w", l.Key, err)
	}
	if n == 0 {
		return leases.Lease{}, leases.ErrLost
	}
	l.Expires = expires
	return l, nil
}

// Release implements leases.Store.
func (s *Store) Release(ctx context.Context, l leases.Lease) error {
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.key(l.Key)}, l.Token).Int()
	if err != nil {
		return fmt.Errorf("release lease %q: %w", l.Key, err)
	}
	if n == 0 {
		return leases.ErrLost
	}
	return nil
}
