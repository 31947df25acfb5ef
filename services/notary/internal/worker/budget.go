package worker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limits are the CA's rate limits the notary keeps under (Let's Encrypt's by default).
type Limits struct {
	// OrdersPer3h is new orders per account per 3 hours; 0 disables the check.
	OrdersPer3h int
	// CertsPerDomainPer7d is certificates per registered domain per 7 days; 0 disables.
	CertsPerDomainPer7d int
}

// Usage is the budget after a call.
type Usage struct {
	Orders3h, Certs7d int
	// Admitted is false when a window is full; RetryAt is when room appears.
	Admitted bool
	RetryAt  time.Time
}

const (
	ordersWindow = 3 * time.Hour
	certsWindow  = 7 * 24 * time.Hour
)

// Budget counts the orders and certificates of the whole deployment (all replicas) in
// the CA's rate-limit windows, in Redis sorted sets scored by time. All its keys share
// one hash tag so one script sees both windows on Redis Cluster.
type Budget struct {
	rdb    redis.UniversalClient
	prefix string
	limits Limits
}

// NewBudget returns a budget under prefix.
func NewBudget(rdb redis.UniversalClient, prefix string, limits Limits) *Budget {
	return &Budget{rdb: rdb, prefix: prefix, limits: limits}
}

func (b *Budget) ordersKey() string { return b.prefix + ":budget:{ca}:orders" }
func (b *Budget) certsKey(registered string) string {
	return b.prefix + ":budget:{ca}:certs:" + registered
}

// admitScript: drop entries older than the windows, refuse when either window is full
// (answering the time the oldest entry leaves it), else record the order.
var admitScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - tonumber(ARGV[2]))
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - tonumber(ARGV[3]))
local orders = redis.call("ZCARD", KEYS[1])
local certs = redis.call("ZCARD", KEYS[2])
local olim, clim = tonumber(ARGV[4]), tonumber(ARGV[5])
if olim > 0 and orders >= olim then
  local oldest = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
  return {0, orders, certs, tonumber(oldest[2]) + tonumber(ARGV[2])}
end
if clim > 0 and certs >= clim then
  local oldest = redis.call("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")
  return {0, orders, certs, tonumber(oldest[2]) + tonumber(ARGV[3])}
end
redis.call("ZADD", KEYS[1], now, ARGV[6])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return {1, orders + 1, certs, 0}`)

// Admit records an order for a name under registered when both windows have room.
func (b *Budget) Admit(ctx context.Context, registered string, now time.Time, id string) (Usage, error) {
	res, err := admitScript.Run(ctx, b.rdb, []string{b.ordersKey(), b.certsKey(registered)},
		now.UnixMilli(), ordersWindow.Milliseconds(), certsWindow.Milliseconds(),
		b.limits.OrdersPer3h, b.limits.CertsPerDomainPer7d, id+"@"+strconv.FormatInt(now.UnixNano(), 36)).Int64Slice()
	if err != nil {
		return Usage{}, fmt.Errorf("rate-limit budget: %w", err)
	}
	u := Usage{Admitted: res[0] == 1, Orders3h: int(res[1]), Certs7d: int(res[2])}
	if !u.Admitted {
		u.RetryAt = time.UnixMilli(res[3])
	}
	return u, nil
}

// Issued records a certificate issued under registered.
func (b *Budget) Issued(ctx context.Context, registered string, now time.Time, id string) (int, error) {
	key := b.certsKey(registered)
	pipe := b.rdb.TxPipeline()
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.Add(-certsWindow).UnixMilli(), 10))
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: id + "@" + strconv.FormatInt(now.UnixNano(), 36)})
	pipe.PExpire(ctx, key, certsWindow)
	card := pipe.ZCard(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("rate-limit budget: %w", err)
	}
	return int(card.Val()), nil
}

// share is used/limit for the gauge (0 when the limit is off).
func share(used, limit int) float64 {
	if limit <= 0 {
		return 0
	}
	return float64(used) / float64(limit)
}
