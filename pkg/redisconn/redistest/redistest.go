// Package redistest connects tests to a real Redis under a key prefix of their own and
// removes every key with that prefix when the test ends.
//
// The server is TEST_REDIS_ADDR (default 127.0.0.1:6379; `make test` starts one when
// none is running). A test that cannot reach it fails: a skipped storage test would pass
// off nothing as coverage.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Addr is the Redis address tests use.
func Addr() string {
	if a := os.Getenv("TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// New returns a client and a fresh key prefix ("test-<random>"); keys under the prefix
// are deleted at cleanup.
func New(t testing.TB) (*redis.Client, string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s (TEST_REDIS_ADDR) is not reachable: %v; `make test` starts one", Addr(), err)
	}
	prefix := Prefix()
	t.Cleanup(func() {
		Clean(t, c, prefix)
		c.Close()
	})
	return c, prefix
}

// Prefix returns a fresh random key prefix.
func Prefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

// Clean deletes every key that contains prefix (keys may wrap it in a hash tag).
func Clean(t testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
	if err := iter.Err(); err != nil {
		t.Errorf("clean Redis keys of %s: %v", prefix, err)
	}
}
