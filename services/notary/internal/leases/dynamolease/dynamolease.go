// Package dynamolease keeps leases in DynamoDB (the notary table of pkg/dynamo), one
// item per key:
//
//	pk lease#<hostname>   sk lease   holder (the token), expires_ms (Unix ms), expires_at (time-to-live)
//
// Acquire is one PutItem on condition that no lease is there or that its expires_ms has
// passed; Renew and Release are one UpdateItem and one DeleteItem on condition that the
// token is the caller's and the lease has not expired. The expiry is checked in the
// condition, not left to DynamoDB's time-to-live, which removes items only eventually
// (expires_at only cleans up). Expiry is judged by the writers' clocks, so replicas'
// clocks must agree to well within the lease TTL (NTP keeps them to milliseconds; the
// TTL is 30 s by default).
package dynamolease

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/services/notary/internal/leases"
)

const sk = "lease"

// Store is a DynamoDB lease store.
type Store struct {
	t   dynamo.Table
	now func() time.Time
}

var _ leases.Store = (*Store)(nil)

// New returns a store on the notary table t (dynamo.TableNotary).
func New(t dynamo.Table) *Store { return &Store{t: t, now: time.Now} }

func pk(key string) string { return "lease#" + key }

// Acquire implements leases.Store.
func (s *Store) Acquire(ctx context.Context, key string, ttl time.Duration) (leases.Lease, error) {
	now := s.now()
	l := leases.Lease{Key: key, Token: leases.NewToken(), Expires: now.Add(ttl)}
	item := dynamo.KeyOf(pk(key), sk)
	item["holder"] = dynamo.S(l.Token)
	item["expires_ms"] = dynamo.N(l.Expires.UnixMilli())
	item[dynamo.AttrExpires] = dynamo.N(dynamo.EpochSeconds(l.Expires))
	_, err := s.t.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.t.Name),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR expires_ms <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": dynamo.N(now.UnixMilli())},
	})
	switch {
	case dynamo.IsConditionFailed(err):
		return leases.Lease{}, leases.ErrHeld
	case err != nil:
		return leases.Lease{}, dynamo.Wrap(ctx, fmt.Sprintf("acquire lease %q", key), err)
	}
	return l, nil
}

// Renew implements leases.Store.
func (s *Store) Renew(ctx context.Context, l leases.Lease, ttl time.Duration) (leases.Lease, error) {
	now := s.now()
	expires := now.Add(ttl)
	_, err := s.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.t.Name),
		Key:                 dynamo.KeyOf(pk(l.Key), sk),
		UpdateExpression:    aws.String("SET expires_ms = :exp, expires_at = :ttl"),
		ConditionExpression: aws.String("holder = :token AND expires_ms > :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp": dynamo.N(expires.UnixMilli()), ":ttl": dynamo.N(dynamo.EpochSeconds(expires)),
			":token": dynamo.S(l.Token), ":now": dynamo.N(now.UnixMilli()),
		},
	})
	switch {
	case dynamo.IsConditionFailed(err):
		return leases.Lease{}, leases.ErrLost
	case err != nil:
		return leases.Lease{}, dynamo.Wrap(ctx, fmt.Sprintf("renew lease %q", l.Key), err)
	}
	l.Expires = expires
	return l, nil
}

// Release implements leases.Store.
func (s *Store) Release(ctx context.Context, l leases.Lease) error {
	_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           aws.String(s.t.Name),
		Key:                 dynamo.KeyOf(pk(l.Key), sk),
		ConditionExpression: aws.String("holder = :token AND expires_ms > :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":token": dynamo.S(l.Token), ":now": dynamo.N(s.now().UnixMilli()),
		},
	})
	switch {
	case dynamo.IsConditionFailed(err):
		return leases.ErrLost
	case err != nil:
		return dynamo.Wrap(ctx, fmt.Sprintf("release lease %q", l.Key), err)
	}
	return nil
}
