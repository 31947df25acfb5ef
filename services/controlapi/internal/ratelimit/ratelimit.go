// Package ratelimit is the contract of controlapi's per-tenant rate limits: a generic
// cell rate algorithm (GCRA, a token bucket without a background refill) keyed by a
// string such as "create:<tenant>".
//
// Implementations: redislimiter and dynamolimiter (shared by every controlapi replica,
// the production ones, on the store -store chose) and memlimiter (one process, for unit
// tests). All pass limitertest.Run.
//
// The contract:
//   - A Limit allows Burst events at once, then one event every Period/Rate.
//   - Allow consumes one event when allowed; a refused call consumes nothing, so a
//     client that keeps retrying early is not pushed further back.
//   - RetryAfter of a refusal is how long until one event will be allowed (> 0);
//     it is 0 when allowed.
//   - Keys are independent; limits are per call (the same key should always be asked with
//     the same Limit).
//   - Safe for concurrent use; under concurrency no more than Burst events pass at once.
//   - A cancelled ctx returns its error (and consumes nothing).
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is Rate events per Period with a burst of Burst. The zero Limit is "unlimited".
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Unlimited reports whether the limit lets everything through.
func (l Limit) Unlimited() bool { return l.Rate <= 0 }

// Interval is the steady-state time between two events.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

func (l Limit) String() string {
	if l.Unlimited() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.Rate, l.Period)
}

// Parse reads "<count>/<duration>" ("100/1h", "10/1m") with a burst equal to count, or
// "off" for no limit.
func Parse(s string) (Limit, error) {
	if s == "off" {
		return Limit{}, nil
	}
	count, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n <= 0 {
		return Limit{}, fmt.Errorf("%q: want <count>/<duration> such as 100/1h, or off", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Limit{}, fmt.Errorf("%q: want <count>/<duration> such as 100/1h, or off", s)
	}
	if d/time.Duration(n) < time.Millisecond {
		return Limit{}, fmt.Errorf("%q: more than one event per millisecond is no limit", s)
	}
	return Limit{Rate: n, Period: d, Burst: n}, nil
}

// Decision is the answer of Allow.
type Decision struct {
	Allowed bool
	// RetryAfter is, when refused, how long until one event will be allowed.
	RetryAfter time.Duration
}

// Limiter decides whether one more event of key may happen now.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}
