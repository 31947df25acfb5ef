package secrets_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/portico-dev/portico/services/certstore/internal/secrets"
)

// countingBackend hands out the reference as the key and counts reads.
type countingBackend struct {
	mu    sync.Mutex
	reads map[string]int
	fail  error
}

func (b *countingBackend) Seal(context.Context, string, []byte) ([]byte, error) { return nil, nil }
func (b *countingBackend) Remove(context.Context, string, []byte) error         { return nil }
func (b *countingBackend) Kind() string                                         { return "counting" }
func (b *countingBackend) Open(_ context.Context, name string, ref []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	b.reads[string(ref)]++
	return []byte("key:" + string(ref)), nil
}

func (b *countingBackend) count(ref string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads[ref]
}

func newCache(t *testing.T, size int, ttl time.Duration) (*secrets.Cache, *countingBackend) {
	b := &countingBackend{reads: map[string]int{}}
	c, err := secrets.NewCache(b, zaptest.NewLogger(t), secrets.CacheOptions{Size: size, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func open(t *testing.T, c *secrets.Cache, ref string) {
	t.Helper()
	key, err := c.Open(t.Context(), "a.example.com", []byte(ref))
	if err != nil || string(key) != "key:"+ref {
		t.Fatalf("Open(%s) = %q, %v", ref, key, err)
	}
}

func TestCache(t *testing.T) {
	t.Run("a hit does not read the backend", func(t *testing.T) {
		c, b := newCache(t, 10, time.Minute)
		open(t, c, "r1")
		open(t, c, "r1")
		if b.count("r1") != 1 {
			t.Fatalf("%d reads, want 1", b.count("r1"))
		}
	})
	t.Run("entries expire after the TTL", func(t *testing.T) {
		c, b := newCache(t, 10, 50*time.Millisecond)
		open(t, c, "r1")
		time.Sleep(120 * time.Millisecond)
		open(t, c, "r1")
		if b.count("r1") != 2 {
			t.Fatalf("%d reads, want 2 (the entry expired)", b.count("r1"))
		}
	})
	t.Run("the bound evicts the least recently used", func(t *testing.T) {
		c, b := newCache(t, 2, time.Minute)
		open(t, c, "r1")
		open(t, c, "r2")
		open(t, c, "r1")
		open(t, c, "r3") // evicts r2
		open(t, c, "r1")
		open(t, c, "r2")
		if b.count("r1") != 1 || b.count("r2") != 2 || c.Len() != 2 {
			t.Fatalf("reads r1=%d r2=%d len=%d, want 1, 2, 2", b.count("r1"), b.count("r2"), c.Len())
		}
	})
	t.Run("forget and purge", func(t *testing.T) {
		c, b := newCache(t, 10, time.Minute)
		open(t, c, "r1")
		c.Forget("a.example.com", []byte("r1"))
		open(t, c, "r1")
		c.Purge()
		open(t, c, "r1")
		if b.count("r1") != 3 {
			t.Fatalf("%d reads, want 3", b.count("r1"))
		}
	})
	t.Run("errors are not cached", func(t *testing.T) {
		c, b := newCache(t, 10, time.Minute)
		b.fail = secrets.ErrNotFound
		if _, err := c.Open(t.Context(), "a.example.com", []byte("r1")); !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		b.fail = nil
		open(t, c, "r1")
	})
}
