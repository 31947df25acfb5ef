package dynamolog_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
	"github.com/portico-dev/portico/services/certstore/internal/watch/dynamolog"
	"github.com/portico-dev/portico/services/certstore/internal/watch/logtest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

const (
	put   = certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT
	reset = certstorev1.ChangeKind_CHANGE_KIND_RESET
)

func TestContract(t *testing.T) {
	logtest.Run(t, func(t *testing.T) watch.Log {
		return dynamolog.New(dynamotest.Table(t, dynamo.TableCertstore), dynamolog.Options{})
	})
}

// TestExpiredEntries: a watcher resuming from a revision whose following entries are
// expired (or about to) gets a RESET; and revisions are not reused once entries are gone.
func TestExpiredEntries(t *testing.T) {
	ctx := t.Context()
	table := dynamotest.Table(t, dynamo.TableCertstore)
	short := dynamolog.New(table, dynamolog.Options{Retention: 30 * time.Minute}) // under the resume margin
	var revs []string
	for range 3 {
		rev, err := short.Append(ctx, put, "n.example.com")
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	hub := logtest.StartHub(t, dynamolog.New(table, dynamolog.Options{}), 16)

	t.Run("the entry after the revision is about to expire", func(t *testing.T) {
		w := logtest.StartWatch(t, hub, revs[0])
		if c := w.Next(t, 2*time.Second); c.Kind != reset {
			t.Fatalf("got %+v, want RESET", c)
		}
	})

	t.Run("entries removed by time-to-live", func(t *testing.T) {
		// Remove the entries as DynamoDB's time-to-live would.
		for _, sk := range []string{"0000000000000000001", "0000000000000000002", "0000000000000000003"} {
			if _, err := table.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table.Name), Key: dynamo.KeyOf("#changes", sk)}); err != nil {
				t.Fatal(err)
			}
		}
		w := logtest.StartWatch(t, hub, revs[0])
		c := w.Next(t, 2*time.Second)
		if c.Kind != reset || c.Revision != revs[2] {
			t.Fatalf("got %+v, want RESET at the last revision issued %s", c, revs[2])
		}
		rev, err := short.Append(ctx, put, "after.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if rev != "4-0" {
			t.Fatalf("revision after the entries expired: %s, want 4-0 (never reused)", rev)
		}
		if c := w.Next(t, time.Second); c.Revision != rev {
			t.Fatalf("live change %+v, want %s", c, rev)
		}
	})
}

// TestHeadCaughtUpAfterACrash: an entry written by a replica that died before raising
// the head is followed, and the next append continues after it.
func TestHeadCaughtUpAfterACrash(t *testing.T) {
	ctx := t.Context()
	table := dynamotest.Table(t, dynamo.TableCertstore)
	log := dynamolog.New(table, dynamolog.Options{})
	if _, err := log.Append(ctx, put, "a.example.com"); err != nil {
		t.Fatal(err)
	}
	// Entry 2 without raising the head.
	if _, err := table.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table.Name), Item: map[string]types.AttributeValue{
		"pk": dynamo.S("#changes"), "sk": dynamo.S("0000000000000000002"), "kind": dynamo.N(int64(put)), "name": dynamo.S("b.example.com"),
		"expires_at": dynamo.N(time.Now().Add(24 * time.Hour).Unix()),
	}}); err != nil {
		t.Fatal(err)
	}
	if last, err := log.Last(ctx); err != nil || last != (watch.Revision{Major: 2}) {
		t.Fatalf("Last = %v, %v; want 2-0", last, err)
	}
	changes, err := log.Wait(ctx, watch.Revision{Major: 1}, time.Second)
	if err != nil || len(changes) != 1 || changes[0].Name != "b.example.com" {
		t.Fatalf("Wait = %+v, %v", changes, err)
	}
	res, err := table.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table.Name), Key: dynamo.KeyOf("#changes", "head"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if seq := res.Item["seq"].(*types.AttributeValueMemberN).Value; seq != "2" {
		t.Fatalf("head %s after a follower saw entry 2, want 2", seq)
	}
	if rev, err := log.Append(ctx, put, "c.example.com"); err != nil || rev != "3-0" {
		t.Fatalf("next append at %s, %v; want 3-0", rev, err)
	}
}
