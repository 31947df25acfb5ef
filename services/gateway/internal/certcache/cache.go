// Package certcache is the gateway's in-process cache of ready-to-use certificates, keyed
// by normalized hostname.
//
// A positive entry holds a parsed *tls.Certificate (Leaf set, private key decoded) and the
// hostname's route, so a handshake never parses PEM, DER or a key. Positive entries are
// bounded by a number of entries and by an estimate of their bytes, evicting the least
// recently used first. A negative entry records that certstore has no certificate for a
// name; negative entries live in a separate, smaller LRU so that a client inventing
// random names can only evict other negative entries, never a certificate.
//
// Freshness: a positive entry is Fresh for the positive TTL (default 1 h) after it was
// fetched, then Stale until the certificate's own notAfter. A Stale entry is still served
// (the caller refreshes it in the background), so a gateway keeps serving what it has
// while certstore is unreachable. A negative entry is answered for the negative TTL
// (default 60 s), then forgotten.
//
// Invalidation follows certstore's Watch events: Invalidate(name) drops the entry keyed
// name (positive or negative), every positive entry served by the certificate stored
// under name (a wildcard serves many names), and, for a wildcard `*.base`, every negative
// entry one label below base (a new wildcard certificate serves them now). Reset drops
// everything.
//
// A fetch races with invalidations: an answer read from certstore just before a change
// must not be cached after the change was applied. Callers take a Token before asking
// certstore and pass it to Put; Put refuses to store an answer when an invalidation that
// concerns it happened in between (the caller still uses the answer once).
//
// All methods are safe for concurrent use. Get allocates nothing.
package certcache

import (
	"crypto/rsa"
	"crypto/tls"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Route says where a hostname's traffic goes.
type Route struct {
	// TenantID owns the hostname.
	TenantID string
	// Upstream is host:port; empty means the gateway's default upstream.
	Upstream string
	// RedirectHTTPS sends plain HTTP requests a 308 to https://.
	RedirectHTTPS bool
}

// Entry is a certificate ready to serve one hostname. The exported fields are set before
// Put and never change afterwards.
type Entry struct {
	// Name is the normalized hostname the entry is keyed by.
	Name string
	// Cert is the chain (DER) and the decoded key, ready for crypto/tls. Leaf is left nil
	// (see ParseCertificate); the facts the gateway needs from the leaf are below.
	Cert *tls.Certificate
	// CertName is the name the certificate is stored under in certstore: Name itself, or
	// the wildcard one label up.
	CertName string
	// Route is the hostname's route.
	Route Route
	// Version is certstore's version of the certificate record.
	Version int64
	// NotAfter is the leaf's expiry: the entry is never served after it.
	NotAfter time.Time
	// Size is the estimated memory the entry holds, in bytes (see EstimateSize).
	Size int64

	expires      time.Time    // fresh until; set by Put
	refreshAfter atomic.Int64 // unix nanoseconds before which no background refresh starts
}

// Expires is when the entry stops being Fresh.
func (e *Entry) Expires() time.Time { return e.expires }

// ClaimRefresh reports whether the caller should refresh a Stale entry now; it returns
// true at most once per backoff, so a failing certstore is not asked on every handshake.
func (e *Entry) ClaimRefresh(now time.Time, backoff time.Duration) bool {
	for {
		next := e.refreshAfter.Load()
		if now.UnixNano() < next {
			return false
		}
		if e.refreshAfter.CompareAndSwap(next, now.Add(backoff).UnixNano()) {
			return true
		}
	}
}

// EstimateSize is the memory a cached certificate holds: its leaf's DER (shared
// intermediates are not counted), the decoded private key, and the entry's own
// bookkeeping. The allowances were measured with TestEstimateSizeMatchesHeap (ECDSA
// P-256: about 1.7 KB per entry once it has signed; RSA-2048: about 5.6 KB), which keeps
// the estimate above the real figure.
func EstimateSize(cert *tls.Certificate) int64 {
	n := int64(perEntryOverhead)
	for i, der := range cert.Certificate {
		if i == 0 || !isInterned(der) {
			n += int64(len(der))
		}
	}
	switch k := cert.PrivateKey.(type) {
	case *rsa.PrivateKey:
		// Primes, CRT values and the precomputed modular arithmetic tables.
		n += 18 * int64(k.Size())
	default:
		// The decoded key and the converted copy crypto keeps after the first signature.
		n += 1024
	}
	return n
}

// perEntryOverhead is the fixed part of EstimateSize: the tls.Certificate, the entry,
// its key string, the chain slice and the LRU's bookkeeping.
const perEntryOverhead = 512

// State is the answer Get gives for a name.
type State uint8

const (
	// Miss: nothing usable is cached; ask certstore.
	Miss State = iota
	// Fresh: serve the entry.
	Fresh
	// Stale: serve the entry, and refresh it in the background.
	Stale
	// Negative: certstore recently said it has no certificate for the name.
	Negative
)

func (s State) String() string {
	switch s {
	case Miss:
		return "miss"
	case Fresh:
		return "fresh"
	case Stale:
		return "stale"
	case Negative:
		return "negative"
	}
	return "unknown"
}

// Config bounds the cache.
type Config struct {
	// MaxEntries bounds the positive entries (at least 1).
	MaxEntries int
	// MaxBytes bounds the positive entries' estimated size (0: no byte bound). The most
	// recent entry is always kept, even when it alone exceeds the bound.
	MaxBytes int64
	// MaxNegative bounds the negative entries (at least 1).
	MaxNegative int
	// PositiveTTL is how long a positive entry is Fresh.
	PositiveTTL time.Duration
	// NegativeTTL is how long a negative entry is answered.
	NegativeTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Metrics receives the cache's counters; nil means unregistered ones.
	Metrics *Metrics
}

// Token marks the cache's invalidation history at the start of a fetch (see Put).
type Token uint64

// invalidationLog is how many recent invalidations Put can check a fetch against; a fetch
// that saw more than this many is not cached.
const invalidationLog = 1024

type invalidation struct {
	seq  uint64
	name string // "" for a Reset
}

// negative is a negative entry.
type negative struct {
	expires time.Time
	base    string // the name without its first label: the wildcard that would cover it
}

// Cache is the certificate cache. Build it with New.
type Cache struct {
	cfg Config
	now func() time.Time
	m   *Metrics

	mu    sync.Mutex
	pos   *simplelru.LRU[string, *Entry]
	neg   *simplelru.LRU[string, negative]
	bytes int64
	// byCert indexes positive entries served by a certificate stored under another name
	// (a wildcard): certificate name -> hostnames. Exact matches need no index.
	byCert map[string]map[string]struct{}
	// negByBase indexes negative entries by the base their wildcard would have.
	negByBase map[string]map[string]struct{}
	seq       uint64
	log       [invalidationLog]invalidation
}

// New builds a cache.
func New(cfg Config) *Cache {
	cfg.MaxEntries = max(cfg.MaxEntries, 1)
	cfg.MaxNegative = max(cfg.MaxNegative, 1)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = math.MaxInt64
	}
	c := &Cache{
		cfg:       cfg,
		now:       cfg.Now,
		m:         cfg.Metrics,
		byCert:    map[string]map[string]struct{}{},
		negByBase: map[string]map[string]struct{}{},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.m == nil {
		c.m = NewMetrics(nil)
	}
	// The LRUs themselves are unbounded (by count we bound them below, so that every
	// eviction is counted in one place); their callbacks keep the indexes and the byte
	// count right for every removal, evicted or invalidated.
	c.pos, _ = simplelru.NewLRU[string, *Entry](math.MaxInt, c.removedPositive)
	c.neg, _ = simplelru.NewLRU[string, negative](math.MaxInt, c.removedNegative)
	return c
}

// Get returns the entry for a normalized name and what to do with it. It allocates
// nothing, so the cached handshake path stays allocation-free.
func (c *Cache) Get(name string) (*Entry, State) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.pos.Get(name); ok {
		switch {
		case now.Before(e.expires):
			c.mu.Unlock()
			c.m.hitFresh.Inc()
			return e, Fresh
		case now.Before(e.NotAfter):
			c.mu.Unlock()
			c.m.hitStale.Inc()
			return e, Stale
		}
		c.pos.Remove(name) // the certificate itself has expired: worthless
	} else if n, ok := c.neg.Get(name); ok {
		if now.Before(n.expires) {
			c.mu.Unlock()
			c.m.hitNegative.Inc()
			return nil, Negative
		}
		c.neg.Remove(name)
	}
	c.updateGaugesLocked()
	c.mu.Unlock()
	c.m.misses.Inc()
	return nil, Miss
}

// Token returns the current invalidation mark; take it before asking certstore.
func (c *Cache) Token() Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Token(c.seq)
}

// Put stores a positive entry fetched since t. It reports false, and stores nothing, when
// an invalidation concerning the entry happened since t, or when the certificate has
// already expired.
func (c *Cache) Put(e *Entry, since Token) bool {
	now := c.now()
	if !now.Before(e.NotAfter) {
		return false
	}
	e.expires = now.Add(c.cfg.PositiveTTL)
	if e.expires.After(e.NotAfter) {
		e.expires = e.NotAfter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.unchangedSinceLocked(e.Name, e.CertName, uint64(since)) {
		return false
	}
	c.pos.Remove(e.Name)
	c.neg.Remove(e.Name)
	c.pos.Add(e.Name, e)
	c.bytes += e.Size
	if e.CertName != e.Name {
		index(c.byCert, e.CertName, e.Name)
	}
	for c.pos.Len() > 1 && (c.pos.Len() > c.cfg.MaxEntries || c.bytes > c.cfg.MaxBytes) {
		c.pos.RemoveOldest()
		c.m.evictPositive.Inc()
	}
	c.updateGaugesLocked()
	return true
}

// PutNegative records that certstore has no certificate for name, as of since. It
// reports false when an invalidation concerning name happened since t.
func (c *Cache) PutNegative(name string, since Token) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.unchangedSinceLocked(name, "", uint64(since)) {
		return false
	}
	c.pos.Remove(name)
	c.neg.Remove(name)
	n := negative{expires: c.now().Add(c.cfg.NegativeTTL)}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		n.base = name[i+1:]
		index(c.negByBase, n.base, name)
	}
	c.neg.Add(name, n)
	for c.neg.Len() > c.cfg.MaxNegative {
		c.neg.RemoveOldest()
		c.m.evictNegative.Inc()
	}
	c.updateGaugesLocked()
	return true
}

// Invalidate drops what a change to name (a hostname or `*.base`) makes wrong: the entry
// keyed name, every entry served by the certificate stored under name, and for a
// wildcard the negative entries it may now cover.
func (c *Cache) Invalidate(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logLocked(name)
	c.pos.Remove(name)
	c.neg.Remove(name)
	for host := range c.byCert[name] {
		c.pos.Remove(host) // the callback edits c.byCert[name]; ranging over it is safe
	}
	if base, ok := strings.CutPrefix(name, "*."); ok {
		for host := range c.negByBase[base] {
			c.neg.Remove(host)
		}
	}
	c.updateGaugesLocked()
}

// Reset drops everything.
func (c *Cache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logLocked("")
	c.pos.Purge()
	c.neg.Purge()
	c.updateGaugesLocked()
}

// Len is the number of positive entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos.Len()
}

// NegativeLen is the number of negative entries.
func (c *Cache) NegativeLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.neg.Len()
}

// Bytes is the estimated size of the positive entries.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

func (c *Cache) logLocked(name string) {
	c.seq++
	c.log[c.seq%invalidationLog] = invalidation{seq: c.seq, name: name}
}

// unchangedSinceLocked reports whether no invalidation since seq concerns a hostname
// served by certName.
func (c *Cache) unchangedSinceLocked(name, certName string, since uint64) bool {
	if c.seq == since {
		return true
	}
	if c.seq-since >= invalidationLog {
		return false // too much happened to tell
	}
	base := ""
	if i := strings.IndexByte(name, '.'); i >= 0 {
		base = name[i+1:]
	}
	for s := since + 1; s <= c.seq; s++ {
		inv := c.log[s%invalidationLog]
		switch {
		case inv.name == "", inv.name == name, inv.name == certName && certName != "":
			return false
		case base != "" && len(inv.name) == len(base)+2 && strings.HasPrefix(inv.name, "*.") && inv.name[2:] == base:
			return false // a wildcard that covers name changed
		}
	}
	return true
}

func (c *Cache) removedPositive(name string, e *Entry) {
	c.bytes -= e.Size
	if e.CertName != name {
		unindex(c.byCert, e.CertName, name)
	}
}

func (c *Cache) removedNegative(name string, n negative) {
	if n.base != "" {
		unindex(c.negByBase, n.base, name)
	}
}

func (c *Cache) updateGaugesLocked() {
	c.m.entriesPositive.Set(float64(c.pos.Len()))
	c.m.entriesNegative.Set(float64(c.neg.Len()))
	c.m.bytes.Set(float64(c.bytes))
}

func index(idx map[string]map[string]struct{}, key, name string) {
	set, ok := idx[key]
	if !ok {
		set = map[string]struct{}{}
		idx[key] = set
	}
	set[name] = struct{}{}
}

func unindex(idx map[string]map[string]struct{}, key, name string) {
	if set, ok := idx[key]; ok {
		delete(set, name)
		if len(set) == 0 {
			delete(idx, key)
		}
	}
}
