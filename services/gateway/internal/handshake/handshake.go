// Package handshake picks the certificate for a TLS handshake by SNI, and the route for
// an HTTP Host, through one pipeline:
//
//  1. normalize the name (pkg/hostname);
//  2. refuse what can never be served (no SNI, an IP literal, an invalid name), without
//     any lookup;
//  3. the local cache (package certcache): a Fresh entry is served, a Stale one is served
//     and refreshed in the background, a Negative one is refused;
//  4. on a miss, one certstore Lookup per name however many handshakes wait for it
//     (singleflight), bounded by a timeout and by a limit on lookups in flight;
//  5. the answer is cached, positive or negative.
//
// Nothing on this path waits on the network when the answer is cached, and a cached
// selection allocates nothing: a name already in canonical form (lowercase letters,
// digits, hyphens and dots, no trailing dot) is looked up in the cache before the full
// hostname check, because everything in the cache was validated when it was inserted.
// Only a miss, or a name in another form (upper case, a trailing dot, Unicode), pays for
// hostname.Policy.Parse, which allocates.
//
// A refused or unknown name makes GetCertificate return (nil, nil), so crypto/tls ends
// the handshake with the unrecognized_name alert; a certstore failure returns an error
// (internal_error alert).
package handshake

import (
	"context"
	"crypto/tls"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
)

// Source answers cache misses: certstore's Lookup (package certsource). Lookup returns
// an errkind NotFound error when no certificate serves the name.
type Source interface {
	Lookup(ctx context.Context, name string) (*certcache.Entry, error)
}

// Config tunes the pipeline; zero values take the defaults.
type Config struct {
	// Policy decides which names are hostnames (ExtraTLDs for test zones).
	Policy hostname.Policy
	// LookupTimeout bounds one certstore Lookup (default 3 s).
	LookupTimeout time.Duration
	// RefreshBackoff is the least time between two background refreshes of one stale
	// entry (default 5 s), so that a failing certstore is not asked on every handshake.
	RefreshBackoff time.Duration
	// MaxLookups bounds the distinct names looked up at once (default 256); a miss
	// beyond it fails at once rather than queueing behind certstore.
	MaxLookups int
}

// Result is how a name was resolved; it labels gateway_tls_handshakes_total.
type Result uint8

// The results.
const (
	ResultHit         Result = iota // served from a fresh cache entry
	ResultStale                     // served from a stale entry, refreshed in the background
	ResultFetched                   // looked up in certstore on a miss
	ResultUnknown                   // no certificate for the name (negative entry or NOT_FOUND)
	ResultRefused                   // no SNI, an IP literal or an invalid name: never looked up
	ResultUnavailable               // certstore failed, timed out, or too many lookups in flight
	numResults
)

var resultNames = [numResults]string{"hit", "stale", "fetched", "unknown", "refused", "unavailable"}

func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "invalid"
}

// Selector is the pipeline. Build it with New; Close it to stop background work.
type Selector struct {
	cache  *certcache.Cache
	src    Source
	cfg    Config
	log    *zap.Logger
	group  singleflight.Group
	slots  chan struct{}
	base   context.Context
	cancel context.CancelFunc

	handshakes [numResults]prometheus.Counter
	lastLog    atomic.Int64 // unix nanoseconds of the last lookup-failure log line
}

// New builds a selector over cache and src. reg receives
// gateway_tls_handshakes_total{result} (nil: not registered).
func New(cache *certcache.Cache, src Source, cfg Config, log *zap.Logger, reg prometheus.Registerer) *Selector {
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 3 * time.Second
	}
	if cfg.RefreshBackoff <= 0 {
		cfg.RefreshBackoff = 5 * time.Second
	}
	if cfg.MaxLookups <= 0 {
		cfg.MaxLookups = 256
	}
	s := &Selector{cache: cache, src: src, cfg: cfg, log: log, slots: make(chan struct{}, cfg.MaxLookups)}
	s.base, s.cancel = context.WithCancel(context.Background())
	hs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_tls_handshakes_total",
		Help: "TLS certificate selections by result: hit, stale, fetched, unknown, refused, unavailable.",
	}, []string{"result"})
	for r := range numResults {
		s.handshakes[r] = hs.WithLabelValues(r.String())
	}
	if reg != nil {
		reg.MustRegister(hs)
	}
	return s
}

// Close cancels lookups and refreshes in flight.
func (s *Selector) Close() { s.cancel() }

// GetCertificate is tls.Config.GetCertificate.
func (s *Selector) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	e, r, err := s.resolve(hello.Context(), hello.ServerName)
	s.handshakes[r].Inc()
	switch r {
	case ResultHit, ResultStale, ResultFetched:
		return e.Cert, nil
	case ResultUnknown, ResultRefused:
		return nil, nil // crypto/tls answers unrecognized_name
	}
	return nil, err
}

// Resolve returns the entry serving a raw name (an SNI value or a Host header without
// its port) by the same pipeline as a handshake. Errors are errkind errors:
// InvalidArgument for a name that can never be served, NotFound for a name without a
// certificate, Unavailable (or the kind certstore gave) when certstore could not answer.
func (s *Selector) Resolve(ctx context.Context, raw string) (*certcache.Entry, Result, error) {
	return s.resolve(ctx, raw)
}

// Canonical reports whether s is in the form the cache keys are in: only lowercase
// letters, digits, hyphens and dots, and no trailing dot. Such a string, if cached, is
// exactly a normalized hostname; anything else must be normalized before the cache is
// asked.
func Canonical(s string) bool {
	if s == "" || len(s) > hostname.MaxLength || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

var (
	errNoName  = errkind.Invalid("server_name", "required", "no server name (SNI) was sent")
	errUnknown = errkind.New(errkind.NotFound, "no certificate for this name")
)

func (s *Selector) resolve(ctx context.Context, raw string) (*certcache.Entry, Result, error) {
	if raw == "" {
		return nil, ResultRefused, errNoName
	}
	name, checked := raw, false
	if !Canonical(raw) {
		n, err := s.cfg.Policy.Normalize(raw)
		if err != nil {
			return nil, ResultRefused, refusal(err)
		}
		name, checked = n, true
	}
	switch e, st := s.cache.Get(name); st {
	case certcache.Fresh:
		return e, ResultHit, nil
	case certcache.Stale:
		s.refreshInBackground(e)
		return e, ResultStale, nil
	case certcache.Negative:
		return nil, ResultUnknown, errUnknown
	}
	if !checked {
		if _, err := s.cfg.Policy.Parse(name); err != nil {
			return nil, ResultRefused, refusal(err)
		}
	}
	e, err := s.fetch(ctx, name)
	switch {
	case err == nil:
		return e, ResultFetched, nil
	case errkind.Is(err, errkind.NotFound):
		return nil, ResultUnknown, err
	}
	return nil, ResultUnavailable, err
}

func refusal(err error) error {
	return errkind.Wrap(errkind.InvalidArgument, err, "not a servable hostname")
}

// fetch asks certstore once for all concurrent callers of one name; each caller stops
// waiting when its own context ends, without cancelling the lookup for the others.
func (s *Selector) fetch(ctx context.Context, name string) (*certcache.Entry, error) {
	ch := s.group.DoChan(name, func() (any, error) { return s.lookup(name) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*certcache.Entry), nil
	case <-ctx.Done():
		return nil, errkind.Wrap(errkind.KindOf(ctx.Err()), ctx.Err(), "gave up waiting for certstore")
	}
}

// lookup runs once per coalesced miss, detached from any one handshake.
func (s *Selector) lookup(name string) (*certcache.Entry, error) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		return nil, errkind.New(errkind.Unavailable, "%d certstore lookups already in flight", cap(s.slots))
	}
	token := s.cache.Token()
	ctx, cancel := context.WithTimeout(s.base, s.cfg.LookupTimeout)
	defer cancel()
	e, err := s.src.Lookup(ctx, name)
	switch {
	case err == nil:
		s.cache.Put(e, token)
		return e, nil
	case errkind.Is(err, errkind.NotFound):
		s.cache.PutNegative(name, token)
		return nil, err
	}
	s.logFailure(name, err)
	return nil, err
}

// refreshInBackground re-fetches a stale entry, at most once per RefreshBackoff. A
// failed refresh leaves the stale entry in place; NOT_FOUND replaces it with a negative
// entry.
func (s *Selector) refreshInBackground(e *certcache.Entry) {
	if s.base.Err() != nil || !e.ClaimRefresh(time.Now(), s.cfg.RefreshBackoff) {
		return
	}
	name := e.Name
	s.group.DoChan(name, func() (any, error) { return s.lookup(name) })
}

// logFailure logs lookup failures at most once a second: when certstore is down every
// uncached name fails, and the metrics count them all.
func (s *Selector) logFailure(name string, err error) {
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("certstore lookup failed; uncached names cannot be served, cached ones still are",
		logging.Hostname(name), zap.Error(err))
}
