// Package redislimiter is the ratelimit.Limiter shared by every controlapi replica: GCRA
// in one Lua script per call on one Redis key per limited key, by
// github.com/go-redis/redis_rate (its script reads Redis's clock, so replicas need not
// agree on time, and it touches one key, so it runs on Redis Cluster).
package redislimiter

import (
	"context"
	"fmt"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
)

// Limiter keeps its buckets in Redis under "rate:<prefix>:<key>"; a bucket expires by
// itself once full again.
type Limiter struct {
	rl     *redis_rate.Limiter
	prefix string
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a limiter whose keys start with keyPrefix (the installation's Redis key
// prefix, so installations sharing a Redis do not share limits).
func New(rdb redis.UniversalClient, keyPrefix string) *Limiter {
	return &Limiter{rl: redis_rate.NewLimiter(rdb), prefix: keyPrefix + ":"}
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, err
	}
	if limit.Unlimited() {
		return ratelimit.Decision{Allowed: true}, nil
	}
	res, err := l.rl.Allow(ctx, l.prefix+key, redis_rate.Limit{Rate: limit.Rate, Period: limit.Period, Burst: limit.Burst})
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if res.Allowed > 0 {
		return ratelimit.Decision{Allowed: true}, nil
	}
	return ratelimit.Decision{RetryAfter: res.RetryAfter}, nil
}
