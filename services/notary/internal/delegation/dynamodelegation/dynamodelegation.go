// Package dynamodelegation keeps the delegation zone's TXT values in DynamoDB (the notary
// table of pkg/dynamo), so that every notary replica's built-in DNS server answers the
// same. Each value is one item in its label's partition:
//
//	pk dns01#<label>   sk <value>   expires_ms (Unix ms), expires_at (time-to-live)
//
// Add is one UpdateItem that only ever extends a value's expiry; Values is one strongly
// consistent Query of the label's partition (values in lexical order, as sort keys are),
// which leaves out expired values itself, since DynamoDB's time-to-live removes items
// only eventually.
package dynamodelegation

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
)

// Store is a DynamoDB delegation store.
type Store struct {
	t dynamo.Table
	// now is the clock (time.Now); expiries are written and compared in client time.
	now func() time.Time
}

var _ delegation.Store = (*Store)(nil)

// New returns a store on the notary table t (dynamo.TableNotary).
func New(t dynamo.Table) *Store { return &Store{t: t, now: time.Now} }

func pk(label string) string { return "dns01#" + label }

// Add implements delegation.Store.
func (s *Store) Add(ctx context.Context, label, value string, ttl time.Duration) error {
	expires := s.now().Add(ttl)
	_, err := s.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.t.Name),
		Key:                 dynamo.KeyOf(pk(label), value),
		UpdateExpression:    aws.String("SET expires_ms = :exp, expires_at = :ttl"),
		ConditionExpression: aws.String("attribute_not_exists(expires_ms) OR expires_ms < :exp"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp": dynamo.N(expires.UnixMilli()), ":ttl": dynamo.N(dynamo.EpochSeconds(expires)),
		},
	})
	if err != nil && !dynamo.IsConditionFailed(err) { // failed: it already lives longer
		return dynamo.Wrap(ctx, "store DNS-01 answer", err)
	}
	return nil
}

// Remove implements delegation.Store.
func (s *Store) Remove(ctx context.Context, label, value string) error {
	_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.t.Name), Key: dynamo.KeyOf(pk(label), value)})
	if err != nil {
		return dynamo.Wrap(ctx, "remove DNS-01 answer", err)
	}
	return nil
}

// Values implements delegation.Store.
func (s *Store) Values(ctx context.Context, label string) ([]string, error) {
	now := s.now().UnixMilli()
	out := []string{}
	p := dynamodb.NewQueryPaginator(s.t.Client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.t.Name),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": dynamo.S(pk(label))},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, dynamo.Wrap(ctx, "read DNS-01 answers", err)
		}
		for _, item := range page.Items {
			exp, _ := item["expires_ms"].(*types.AttributeValueMemberN)
			if exp == nil {
				continue
			}
			if ms, err := strconv.ParseInt(exp.Value, 10, 64); err == nil && ms > now {
				out = append(out, dynamo.StringAttr(item, dynamo.AttrSK))
			}
		}
	}
	return out, nil
}
