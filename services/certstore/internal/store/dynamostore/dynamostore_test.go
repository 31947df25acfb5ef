package dynamostore_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/dynamostore"
	"github.com/portico-dev/portico/services/certstore/internal/store/storetest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return dynamostore.New(dynamotest.Table(t, dynamo.TableCertstore))
	})
}

// TestTombstoneExpiresAndLeavesTheIndex: a deleted certificate keeps only its version and
// fencing token, with a time-to-live of store.TombstoneTTL, and is out of the expiry index.
func TestTombstoneExpiresAndLeavesTheIndex(t *testing.T) {
	ctx := t.Context()
	table := dynamotest.Table(t, dynamo.TableCertstore)
	s := dynamostore.New(table)
	c := store.Certificate{Name: "gone.example.com", Chain: [][]byte{{0x04, 0x01, 'x'}}, KeyRef: []byte("k"),
		NotAfter: time.Now().Add(time.Hour), RenewTime: time.Now(), FencingToken: 3}
	if _, _, err := s.PutCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := s.DeleteCertificate(ctx, c.Name, 4); err != nil {
		t.Fatal(err)
	}
	res, err := table.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table.Name), Key: dynamo.KeyOf(c.Name, "cert"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var attrs []string
	for a := range res.Item {
		attrs = append(attrs, a)
	}
	slices.Sort(attrs)
	if want := []string{"expires_at", "fence", "pk", "sk", "version"}; !slices.Equal(attrs, want) {
		t.Fatalf("tombstone attributes %v, want %v", attrs, want)
	}
	exp, _ := strconv.ParseInt(res.Item["expires_at"].(*types.AttributeValueMemberN).Value, 10, 64)
	if lo, hi := before.Add(store.TombstoneTTL).Unix(), time.Now().Add(store.TombstoneTTL).Unix()+1; exp < lo || exp > hi {
		t.Fatalf("expires_at %d, want within [%d, %d]", exp, lo, hi)
	}
	if fence := res.Item["fence"].(*types.AttributeValueMemberN).Value; fence != "4" {
		t.Fatalf("tombstone fence %s, want the deleter's 4", fence)
	}
	// A new put clears the time-to-live: the record must not vanish under its new owner.
	if _, _, err := s.PutCertificate(ctx, store.Certificate{Name: c.Name, Chain: c.Chain, KeyRef: []byte("k2"), RenewTime: time.Now(), FencingToken: 4}); err != nil {
		t.Fatal(err)
	}
	res, err = table.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table.Name), Key: dynamo.KeyOf(c.Name, "cert"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Item["expires_at"]; ok {
		t.Fatal("a live record kept its tombstone's expires_at")
	}
}

// BenchmarkGetServing is Lookup's one storage read (certificate and route of a name).
func BenchmarkGetServing(b *testing.B) {
	storetest.BenchGetServing(b, dynamostore.New(dynamotest.Table(b, dynamo.TableCertstore)))
}

func BenchmarkPutCertificate(b *testing.B) {
	storetest.BenchPutCertificate(b, dynamostore.New(dynamotest.Table(b, dynamo.TableCertstore)))
}
