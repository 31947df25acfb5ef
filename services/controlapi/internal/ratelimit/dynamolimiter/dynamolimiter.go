// Package dynamolimiter is the ratelimit.Limiter shared by every controlapi replica on
// DynamoDB (the controlapi table of pkg/dynamo): GCRA, one item per limited key holding
// its theoretical arrival time (tat, Unix ms),
//
//	pk rate#<key>   sk rate   tat, expires_at (time-to-live: when the bucket is full again)
//
// An allowed event is one conditional UpdateItem, with no read before it: either the
// bucket is idle (no item, or tat not after now) and tat becomes now + interval, or it is
// busy with room (now < tat <= now + (burst-1) x interval) and tat grows by one interval.
// Each condition is checked by DynamoDB against the stored tat, so concurrent callers on
// any replica never pass more than the burst. When both conditions fail the event is
// refused without a write, and one read gives the time until there is room.
//
// Unlike the Redis limiter, which reads Redis's clock, times are the replicas' own:
// their clocks must agree to well within a limit's interval (NTP keeps them to
// milliseconds; controlapi's intervals are seconds to minutes).
package dynamolimiter

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
)

const sk = "rate"

// Limiter keeps its buckets in DynamoDB.
type Limiter struct {
	t   dynamo.Table
	now func() time.Time
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a limiter on the controlapi table t (dynamo.TableControlAPI).
func New(t dynamo.Table) *Limiter { return &Limiter{t: t, now: time.Now} }

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, err
	}
	if limit.Unlimited() {
		return ratelimit.Decision{Allowed: true}, nil
	}
	interval := limit.Interval().Milliseconds()
	slack := int64(max(limit.Burst, 1)-1) * interval // how far tat may run ahead of now
	k := dynamo.KeyOf("rate#"+key, sk)
	for range 8 { // each round fails only when another caller changed tat meanwhile
		now := l.now().UnixMilli()
		// Idle bucket: start over from now.
		ok, err := l.update(ctx, k, "SET tat = :next, expires_at = :exp", "attribute_not_exists(tat) OR tat <= :now",
			map[string]types.AttributeValue{
				":next": dynamo.N(now + interval), ":now": dynamo.N(now),
				":exp": dynamo.N(expiry(now+interval, slack)),
			})
		if err != nil || ok {
			return ratelimit.Decision{Allowed: ok}, err
		}
		// Busy bucket with room: one more interval.
		ok, err = l.update(ctx, k, "SET tat = tat + :interval, expires_at = :exp", "tat > :now AND tat <= :latest",
			map[string]types.AttributeValue{
				":interval": dynamo.N(interval), ":now": dynamo.N(now), ":latest": dynamo.N(now + slack),
				":exp": dynamo.N(expiry(now+slack+interval, slack)),
			})
		if err != nil || ok {
			return ratelimit.Decision{Allowed: ok}, err
		}
		tat, found, err := l.tat(ctx, k)
		if err != nil {
			return ratelimit.Decision{}, err
		}
		if wait := tat - slack - now; found && wait > 0 {
			return ratelimit.Decision{RetryAfter: time.Duration(wait) * time.Millisecond}, nil
		}
		// The bucket drained between the writes and the read: try again.
	}
	return ratelimit.Decision{}, fmt.Errorf("rate limit %s: contention did not settle", key)
}

// expiry is when a bucket whose tat is tat is full again (Unix s), for time-to-live.
func expiry(tatMs, slack int64) int64 {
	return dynamo.EpochSeconds(time.UnixMilli(tatMs).Add(time.Duration(slack) * time.Millisecond))
}

func (l *Limiter) update(ctx context.Context, key dynamo.Item, update, cond string, values map[string]types.AttributeValue) (bool, error) {
	_, err := l.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(l.t.Name), Key: key,
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
	})
	switch {
	case dynamo.IsConditionFailed(err):
		return false, nil
	case err != nil:
		return false, dynamo.Wrap(ctx, "rate limit", err)
	}
	return true, nil
}

func (l *Limiter) tat(ctx context.Context, key dynamo.Item) (int64, bool, error) {
	res, err := l.t.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.t.Name), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, false, dynamo.Wrap(ctx, "rate limit", err)
	}
	v, ok := res.Item["tat"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil, err
}
