// Package memlimiter is an in-process ratelimit.Limiter for unit tests and single-replica
// tools, on golang.org/x/time/rate (one token bucket per key, equivalent to GCRA).
package memlimiter

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
)

// Limiter keeps one bucket per key. Buckets are never evicted: fine for tests and for a
// bounded set of tenants, not for arbitrary keys from the network.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a limiter on the given clock (time.Now when nil).
func New(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, buckets: map[string]*rate.Limiter{}}
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, err
	}
	if limit.Unlimited() {
		return ratelimit.Decision{Allowed: true}, nil
	}
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(limit.Interval()), limit.Burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()

	now := l.now()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return ratelimit.Decision{RetryAfter: limit.Interval()}, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refusal consumes nothing
		return ratelimit.Decision{RetryAfter: d}, nil
	}
	return ratelimit.Decision{Allowed: true}, nil
}
