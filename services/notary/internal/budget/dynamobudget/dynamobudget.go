// Package dynamobudget is the budget.Store in DynamoDB (the notary table of pkg/dynamo):
// each window is one item holding its entries' times, changed by compare-and-swap on the
// item's version:
//
//	pk budget#orders                 sk budget   at (list of Unix ms), version, expires_at
//	pk budget#certs#<registered>     sk budget   at (list of Unix ms), version, expires_at
//
// Admit reads both windows (one consistent BatchGetItem), decides, and records the order
// with a PutItem on condition that the orders window's version is the one read,
// retrying when another replica wrote meanwhile: concurrent Admits never record more
// orders than the limit. The certificates window is read, not locked (DynamoDB has no
// multi-item condition without transactions): an Issued landing between the read and
// the write can let one order through that the Redis budget would refuse, and the CA's
// own limit still stands behind it.
//
// A window holds at most its limit of entries (an item far below DynamoDB's 400 KB); a
// window whose limit is 0 is not kept at all, so an unlimited deployment writes nothing.
package dynamobudget

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/services/notary/internal/budget"
)

const (
	sk       = "budget"
	ordersPK = "budget#orders"
)

func certsPK(registered string) string { return "budget#certs#" + registered }

// window is one window's item.
type window struct {
	PK      string  `dynamodbav:"pk"`
	SK      string  `dynamodbav:"sk"`
	At      []int64 `dynamodbav:"at"`
	Version int64   `dynamodbav:"version"`
	Expires int64   `dynamodbav:"expires_at"`
}

// prune keeps the entries younger than d at now, oldest first.
func (w *window) prune(now time.Time, d time.Duration) {
	cut := now.Add(-d).UnixMilli()
	w.At = slices.DeleteFunc(w.At, func(ms int64) bool { return ms <= cut })
	slices.Sort(w.At)
}

// Store is a DynamoDB budget.
type Store struct {
	t      dynamo.Table
	limits budget.Limits
}

var _ budget.Store = (*Store)(nil)

// New returns a budget on the notary table t (dynamo.TableNotary).
func New(t dynamo.Table, limits budget.Limits) *Store { return &Store{t: t, limits: limits} }

// read returns the windows under pks (empty ones for those not stored).
func (s *Store) read(ctx context.Context, pks ...string) ([]window, error) {
	items, err := s.t.BatchGet(ctx, pks, sk)
	if err != nil {
		return nil, fmt.Errorf("rate-limit budget: %w", err)
	}
	out := make([]window, len(pks))
	for i, pk := range pks {
		out[i] = window{PK: pk, SK: sk}
		if item, ok := items[pk]; ok {
			if err := attributevalue.UnmarshalMap(item, &out[i]); err != nil {
				return nil, fmt.Errorf("rate-limit budget %s: %w", pk, err)
			}
		}
	}
	return out, nil
}

// write stores w with the next version on condition that its stored version is still
// w.Version; false when another writer came first.
func (s *Store) write(ctx context.Context, w window, now time.Time, keep time.Duration) (bool, error) {
	expected := w.Version
	w.Version++
	w.Expires = dynamo.EpochSeconds(now.Add(keep))
	av, err := attributevalue.MarshalMap(w)
	if err != nil {
		return false, err
	}
	cond, values := "attribute_not_exists(pk)", map[string]types.AttributeValue(nil)
	if expected > 0 {
		cond, values = "version = :v", map[string]types.AttributeValue{":v": dynamo.N(expected)}
	}
	_, err = s.t.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.t.Name), Item: av, ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
	})
	switch {
	case dynamo.IsConditionFailed(err):
		return false, nil
	case err != nil:
		return false, dynamo.Wrap(ctx, "rate-limit budget", err)
	}
	return true, nil
}

// Admit implements budget.Store.
func (s *Store) Admit(ctx context.Context, registered string, now time.Time, _ string) (budget.Usage, error) {
	for {
		ws, err := s.read(ctx, ordersPK, certsPK(registered))
		if err != nil {
			return budget.Usage{}, err
		}
		orders, certs := ws[0], ws[1]
		orders.prune(now, budget.OrdersWindow)
		certs.prune(now, budget.CertsWindow)
		u := budget.Usage{Orders3h: len(orders.At), Certs7d: len(certs.At)}
		switch {
		case s.limits.OrdersPer3h > 0 && len(orders.At) >= s.limits.OrdersPer3h:
			u.RetryAt = time.UnixMilli(orders.At[0]).Add(budget.OrdersWindow)
			return u, nil
		case s.limits.CertsPerDomainPer7d > 0 && len(certs.At) >= s.limits.CertsPerDomainPer7d:
			u.RetryAt = time.UnixMilli(certs.At[0]).Add(budget.CertsWindow)
			return u, nil
		}
		u.Admitted = true
		if s.limits.OrdersPer3h <= 0 {
			return u, nil // unlimited: not kept
		}
		orders.At = append(orders.At, now.UnixMilli())
		slices.Sort(orders.At)
		ok, err := s.write(ctx, orders, now, budget.OrdersWindow)
		if err != nil {
			return budget.Usage{}, err
		}
		if ok {
			u.Orders3h = len(orders.At)
			return u, nil
		}
	}
}

// Issued implements budget.Store.
func (s *Store) Issued(ctx context.Context, registered string, now time.Time, _ string) (int, error) {
	if s.limits.CertsPerDomainPer7d <= 0 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, nil // unlimited: not kept
	}
	for {
		ws, err := s.read(ctx, certsPK(registered))
		if err != nil {
			return 0, err
		}
		certs := ws[0]
		certs.prune(now, budget.CertsWindow)
		certs.At = append(certs.At, now.UnixMilli())
		slices.Sort(certs.At)
		ok, err := s.write(ctx, certs, now, budget.CertsWindow)
		if err != nil {
			return 0, err
		}
		if ok {
			return len(certs.At), nil
		}
	}
}
