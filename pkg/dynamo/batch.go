package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item is one DynamoDB item.
type Item = map[string]types.AttributeValue

// batchGetMax is BatchGetItem's limit of keys per call.
const batchGetMax = 100

// BatchGet reads the items under pks (each with sort key sk) with strongly consistent
// reads, 100 keys per call, retrying the keys DynamoDB leaves unprocessed. It returns
// the items found, by pk; a missing item is simply absent.
func (t Table) BatchGet(ctx context.Context, pks []string, sk string) (map[string]Item, error) {
	out := make(map[string]Item, len(pks))
	for start := 0; start < len(pks); start += batchGetMax {
		end := min(start+batchGetMax, len(pks))
		keys := make([]Item, 0, end-start)
		seen := map[string]bool{}
		for _, pk := range pks[start:end] {
			if !seen[pk] {
				seen[pk] = true
				keys = append(keys, KeyOf(pk, sk))
			}
		}
		req := map[string]types.KeysAndAttributes{t.Name: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return nil, err
				}
			}
			res, err := t.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, Wrap(ctx, "read items of "+t.Name, err)
			}
			for _, item := range res.Responses[t.Name] {
				if pk, ok := item[AttrPK].(*types.AttributeValueMemberS); ok {
					out[pk.Value] = item
				}
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// backoff sleeps before retry attempt (1, 2, ...): 20 ms doubling, at most 1 s.
func backoff(ctx context.Context, attempt int) error {
	d := min(20*time.Millisecond<<min(attempt-1, 6), time.Second)
	select {
	case <-ctx.Done():
		return fmt.Errorf("retry unprocessed items: %w", ctx.Err())
	case <-time.After(d):
		return nil
	}
}

// StringAttr returns the string attribute name of item, or "".
func StringAttr(item Item, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
