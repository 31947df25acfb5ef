// Package redisbudget is the budget.Store in Redis: each window is a sorted set scored by
// time (Unix ms), all under one hash tag so one script sees both windows on Redis Cluster:
//
//	<prefix>:budget:{ca}:orders               the orders of the last 3 hours
//	<prefix>:budget:{ca}:certs:<registered>   a registered domain's certificates, 7 days
package redisbudget

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/services/notary/internal/budget"
)

// Store is a Redis budget.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	limits budget.Limits
}

var _ budget.Store = (*Store)(nil)

// New returns a budget under prefix.
func New(rdb redis.UniversalClient, prefix string, limits budget.Limits) *Store {
	return &Store{rdb: rdb, prefix: prefix, limits: limits}
}

func (b *Store) ordersKey() string { return b.prefix + ":budget:{ca}:orders" }
func (b *Store) certsKey(registered string) string {
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

// Admit implements budget.Store.
func (b *Store) Admit(ctx context.Context, registered string, now time.Time, id string) (budget.Usage, error) {
	res, err := admitScript.Run(ctx, b.rdb, []string{b.ordersKey(), b.certsKey(registered)},
		now.UnixMilli(), budget.OrdersWindow.Milliseconds(), budget.CertsWindow.Milliseconds(),
		b.limits.OrdersPer3h, b.limits.CertsPerDomainPer7d, id+"@"+strconv.FormatInt(now.UnixNano(), 36)).Int64Slice()
	if err != nil {
		return budget.Usage{}, fmt.Errorf("rate-limit budget: %w", err)
	}
	u := budget.Usage{Admitted: res[0] == 1, Orders3h: int(res[1]), Certs7d: int(res[2])}
	if !u.Admitted {
		u.RetryAt = time.UnixMilli(res[3])
	}
	return u, nil
}

// Issued implements budget.Store.
func (b *Store) Issued(ctx context.Context, registered string, now time.Time, id string) (int, error) {
	key := b.certsKey(registered)
	pipe := b.rdb.TxPipeline()
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.Add(-budget.CertsWindow).UnixMilli(), 10))
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: id + "@" + strconv.FormatInt(now.UnixNano(), 36)})
	pipe.PExpire(ctx, key, budget.CertsWindow)
	card := pipe.ZCard(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("rate-limit budget: %w", err)
	}
	return int(card.Val()), nil
}
