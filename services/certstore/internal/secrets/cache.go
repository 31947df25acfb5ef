package secrets

import (
	"context"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/portico-dev/portico/pkg/logging"
)

// Cache opens keys through a Backend and keeps the decrypted keys in memory, bounded in
// number and time. Concurrent misses of one reference share one backend read. Every
// backend read (a miss) is audit-logged as "private key read"; hits are not, so the
// audit log grows with backend reads rather than with Lookups.
//
// Entries are keyed by name and reference; a reference changes with every put and
// every re-wrap, so a cached key is never stale.
type Cache struct {
	backend Backend
	log     *zap.Logger
	keys    *expirable.LRU[string, []byte]
	flight  singleflight.Group
	lookups *prometheus.CounterVec
}

// CacheOptions bound the cache.
type CacheOptions struct {
	// Size is the most keys held (at least 1).
	Size int
	// TTL is how long a key is held after it was read.
	TTL time.Duration
	// Registerer receives the hit and miss counters; nil means none.
	Registerer prometheus.Registerer
}

// NewCache wraps backend.
func NewCache(backend Backend, log *zap.Logger, o CacheOptions) (*Cache, error) {
	c := &Cache{
		backend: backend,
		log:     log,
		keys:    expirable.NewLRU[string, []byte](max(o.Size, 1), nil, o.TTL),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certstore_key_cache_lookups_total",
			Help: "Private key reads by result: hit (served from memory) or miss (read from the secrets backend).",
		}, []string{"result"}),
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(c.lookups); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Backend is the wrapped backend.
func (c *Cache) Backend() Backend { return c.backend }

// Open returns the key behind ref for name, from memory when it is there. The returned
// slice is shared: callers must not modify it.
func (c *Cache) Open(ctx context.Context, name string, ref []byte) ([]byte, error) {
	id := name + "\x00" + string(ref)
	if key, ok := c.keys.Get(id); ok {
		c.lookups.WithLabelValues("hit").Inc()
		return key, nil
	}
	c.lookups.WithLabelValues("miss").Inc()
	v, err, _ := c.flight.Do(id, func() (any, error) {
		// Detached from one caller's cancellation: other callers may share this read.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		key, err := c.backend.Open(rctx, name, ref)
		if err != nil {
			return nil, err
		}
		logging.Audit(c.log, "private key read", logging.Hostname(name), zap.String("secrets_backend", c.backend.Kind()))
		c.keys.Add(id, key)
		return key, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Forget drops a cached key (after its certificate was replaced or deleted).
func (c *Cache) Forget(name string, ref []byte) {
	c.keys.Remove(name + "\x00" + string(ref))
}

// Len is the number of keys held.
func (c *Cache) Len() int { return c.keys.Len() }

// Purge drops every cached key (after a KEK or backend incident, and for benchmarks of
// the cold path).
func (c *Cache) Purge() { c.keys.Purge() }
