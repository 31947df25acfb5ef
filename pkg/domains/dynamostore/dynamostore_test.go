package dynamostore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/dynamostore"
	"github.com/portico-dev/portico/pkg/domains/storetest"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) domains.Store {
		return dynamostore.New(dynamotest.Table(t, dynamo.TableDomains))
	})
}

// TestInterruptedChangesLeaveNothingThatResolves: the states a crash can leave between
// the conditional writes of a tenant change, and that none of them grants anything.
func TestInterruptedChangesLeaveNothingThatResolves(t *testing.T) {
	ctx := t.Context()
	table := dynamotest.Table(t, dynamo.TableDomains)
	s := dynamostore.New(table)
	put := func(item map[string]types.AttributeValue) {
		t.Helper()
		if _, err := table.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table.Name), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTenant(ctx, storetest.NewTenant("acme")); err != nil {
		t.Fatal(err)
	}

	t.Run("a key claim whose tenant record names another key", func(t *testing.T) {
		// A rotation that claimed hash-next and stopped before switching the record.
		put(map[string]types.AttributeValue{"pk": dynamo.S("key#hash-next"), "sk": dynamo.S("key"), "tenant_id": dynamo.S("acme")})
		if _, err := s.TenantByKeyHash(ctx, "hash-next"); !errors.Is(err, domains.ErrNotFound) {
			t.Fatalf("TenantByKeyHash(claim the record does not name) = %v, want ErrNotFound", err)
		}
		// The same rotation, retried, completes.
		if _, err := s.RotateTenantKey(ctx, "acme", "hash-next", time.Now()); err != nil {
			t.Fatal(err)
		}
		if tn, err := s.TenantByKeyHash(ctx, "hash-next"); err != nil || tn.ID != "acme" {
			t.Fatalf("after the retried rotation: %+v, %v", tn, err)
		}
	})

	t.Run("a key claim of a tenant that was never created", func(t *testing.T) {
		put(map[string]types.AttributeValue{"pk": dynamo.S("key#hash-ghost"), "sk": dynamo.S("key"), "tenant_id": dynamo.S("ghost")})
		if _, err := s.TenantByKeyHash(ctx, "hash-ghost"); !errors.Is(err, domains.ErrNotFound) {
			t.Fatalf("TenantByKeyHash(claim without a tenant) = %v, want ErrNotFound", err)
		}
		// The same creation, retried, completes.
		ghost := storetest.NewTenant("ghost")
		ghost.KeyHash = "hash-ghost"
		if err := s.CreateTenant(ctx, ghost); err != nil {
			t.Fatal(err)
		}
		if tn, err := s.TenantByKeyHash(ctx, "hash-ghost"); err != nil || tn.ID != "ghost" {
			t.Fatalf("after the retried creation: %+v, %v", tn, err)
		}
	})

	t.Run("a deleted tenant's token that the deletion did not remove", func(t *testing.T) {
		if tok, err := s.VerificationToken(ctx, "gone", "example.com", "old"); err != nil || tok != "old" {
			t.Fatalf("token = %q, %v", tok, err)
		}
		if err := s.CreateTenant(ctx, storetest.NewTenant("gone")); err != nil {
			t.Fatal(err)
		}
		old, err := s.VerificationToken(ctx, "gone", "example.org", "first")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTenant(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		// Put the token back as if the deletion had stopped before removing it.
		put(map[string]types.AttributeValue{"pk": dynamo.S("tenant#gone"), "sk": dynamo.S("token#example.org"),
			"token": dynamo.S(old), "incarnation": dynamo.S("an-earlier-incarnation")})
		if err := s.CreateTenant(ctx, storetest.NewTenant("gone")); err != nil {
			t.Fatal(err)
		}
		for _, rd := range []string{"example.com", "example.org"} {
			if tok, _ := s.VerificationToken(ctx, "gone", rd, "fresh-"+rd); tok != "fresh-"+rd {
				t.Errorf("the new tenant got %q for %s, want its own fresh token", tok, rd)
			}
		}
	})
}

// TestDueIndexIsSparse: a domain with nothing scheduled carries no due index key, so the
// due index holds only what the notary may have to do.
func TestDueIndexIsSparse(t *testing.T) {
	ctx := t.Context()
	table := dynamotest.Table(t, dynamo.TableDomains)
	s := dynamostore.New(table)
	d := storetest.NewDomain("quiet.example.com", "acme")
	d.NextAttemptAt = time.Time{}
	if _, err := s.CreateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	res, err := table.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table.Name), Key: dynamo.KeyOf("domain#quiet.example.com", "domain")})
	if err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"due_pk", "due_sk"} {
		if _, ok := res.Item[attr]; ok {
			t.Errorf("an unscheduled domain has %s", attr)
		}
	}
	for attr, want := range map[string]string{"all_pk": "domain", "name": "quiet.example.com", "tenant_pk": "acme", "status_pk": "1", "tenant_status_pk": "acme#1"} {
		if got := dynamo.StringAttr(res.Item, attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
}

func BenchmarkCreateDomain(b *testing.B) {
	s := dynamostore.New(dynamotest.Table(b, dynamo.TableDomains))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		d := storetest.NewDomain(fmt.Sprintf("h%d.example.com", i), "acme")
		if _, err := s.CreateDomain(b.Context(), d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetDomain(b *testing.B) {
	s := dynamostore.New(dynamotest.Table(b, dynamo.TableDomains))
	d := storetest.NewDomain("shop.example.com", "acme")
	d.NextAttemptAt = time.Now()
	if _, err := s.CreateDomain(b.Context(), d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetDomain(b.Context(), "shop.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
