// Package dynamochallenges keeps challenge answers in DynamoDB (the notary table of
// pkg/dynamo), one item per entry, so every notary replica answers the CA whichever one
// presented the token:
//
//	pk challenge#<kind>:<name>   sk challenge   host, content, expires_ms, expires_at
//
// Get checks expires_ms itself: DynamoDB's time-to-live (expires_at) removes expired
// items only eventually.
package dynamochallenges

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
)

const sk = "challenge"

// Store is a DynamoDB challenge store.
type Store struct {
	t   dynamo.Table
	now func() time.Time
}

var _ challenges.Store = (*Store)(nil)

// New returns a store on the notary table t (dynamo.TableNotary).
func New(t dynamo.Table) *Store { return &Store{t: t, now: time.Now} }

func pk(kind challenges.Kind, name string) string { return "challenge#" + string(kind) + ":" + name }

// Put implements challenges.Store.
func (s *Store) Put(ctx context.Context, e challenges.Entry, ttl time.Duration) error {
	expires := s.now().Add(ttl)
	item := dynamo.KeyOf(pk(e.Kind, e.Name), sk)
	item["host"] = dynamo.S(e.Host)
	item["content"] = dynamo.S(e.Content)
	item["expires_ms"] = dynamo.N(expires.UnixMilli())
	item[dynamo.AttrExpires] = dynamo.N(dynamo.EpochSeconds(expires))
	if _, err := s.t.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.t.Name), Item: item}); err != nil {
		return dynamo.Wrap(ctx, "store challenge", err)
	}
	return nil
}

// Get implements challenges.Store.
func (s *Store) Get(ctx context.Context, kind challenges.Kind, name string) (challenges.Entry, error) {
	res, err := s.t.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.t.Name), Key: dynamo.KeyOf(pk(kind, name), sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return challenges.Entry{}, dynamo.Wrap(ctx, "read challenge", err)
	}
	if res.Item == nil {
		return challenges.Entry{}, challenges.ErrNotFound
	}
	exp, _ := res.Item["expires_ms"].(*types.AttributeValueMemberN)
	if exp == nil {
		return challenges.Entry{}, challenges.ErrNotFound
	}
	ms, err := strconv.ParseInt(exp.Value, 10, 64)
	if err != nil || ms <= s.now().UnixMilli() {
		return challenges.Entry{}, challenges.ErrNotFound
	}
	return challenges.Entry{Kind: kind, Name: name, Host: dynamo.StringAttr(res.Item, "host"), Content: dynamo.StringAttr(res.Item, "content")}, nil
}

// Delete implements challenges.Store.
func (s *Store) Delete(ctx context.Context, kind challenges.Kind, name string) error {
	_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.t.Name), Key: dynamo.KeyOf(pk(kind, name), sk)})
	if err != nil {
		return dynamo.Wrap(ctx, "delete challenge", err)
	}
	return nil
}
