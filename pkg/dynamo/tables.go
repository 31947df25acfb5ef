package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// The key attributes of every table, and the time-to-live attribute (Unix seconds).
const (
	AttrPK      = "pk"
	AttrSK      = "sk"
	AttrExpires = "expires_at"
)

// The tables, by their name without the prefix.
const (
	// TableDomains holds tenants, their API key claims and verification tokens, and
	// domains (pkg/domains/dynamostore); controlapi and the notary use it.
	TableDomains = "domains"
	// TableCertstore holds certificate records, routes and the Watch change log
	// (certstore only).
	TableCertstore = "certstore"
	// TableNotary holds the notary's leases, HTTP-01 answers, rate-limit budget and
	// delegation-zone records.
	TableNotary = "notary"
	// TableControlAPI holds controlapi's rate-limit buckets.
	TableControlAPI = "controlapi"
)

// Global secondary indexes of TableDomains. Each is KEYS_ONLY: a listing reads a page of
// keys from the index, then the records themselves with one consistent BatchGetItem, so
// an index costs a write only when the attribute it is keyed by changes.
const (
	// IndexAll lists every tenant (all_pk "tenant") and every domain (all_pk "domain")
	// by name.
	IndexAll = "all"
	// IndexByTenant lists a tenant's domains by hostname (tenant_pk = tenant ID).
	IndexByTenant = "by_tenant"
	// IndexByStatus lists domains in one status by hostname (status_pk = status number).
	IndexByStatus = "by_status"
	// IndexByTenantStatus lists a tenant's domains in one status by hostname
	// (tenant_status_pk = "<tenant>#<status>").
	IndexByTenantStatus = "by_tenant_status"
	// IndexDue lists domains by next attempt (due_pk "due", due_sk
	// "<Unix µs, 19 digits>#<hostname>"); a domain with nothing scheduled is not in it.
	IndexDue = "due"
)

// Global secondary index of TableCertstore.
const (
	// IndexRenew is the expiry index: live certificates by renew time (renew_pk "renew",
	// renew_sk "<Unix ms, 19 digits>#<name>"), KEYS_ONLY.
	IndexRenew = "renew"
)

// Index key attributes.
const (
	AttrAllPK          = "all_pk"
	AttrTenantPK       = "tenant_pk"
	AttrStatusPK       = "status_pk"
	AttrTenantStatusPK = "tenant_status_pk"
	AttrName           = "name"
	AttrDuePK          = "due_pk"
	AttrDueSK          = "due_sk"
	AttrRenewPK        = "renew_pk"
	AttrRenewSK        = "renew_sk"
)

// Table is one table of one installation: the client and the full table name.
type Table struct {
	Client *dynamodb.Client
	Name   string
}

// NewTable names table (one of the Table* constants) under prefix.
func NewTable(client *dynamodb.Client, prefix, table string) Table {
	return Table{Client: client, Name: prefix + table}
}

// index is one global secondary index: name, partition and sort key attributes.
type index struct{ name, pk, sk string }

// layout is what CreateTables makes of each table.
var layout = map[string][]index{
	TableDomains: {
		{IndexAll, AttrAllPK, AttrName},
		{IndexByTenant, AttrTenantPK, AttrName},
		{IndexByStatus, AttrStatusPK, AttrName},
		{IndexByTenantStatus, AttrTenantStatusPK, AttrName},
		{IndexDue, AttrDuePK, AttrDueSK},
	},
	TableCertstore:  {{IndexRenew, AttrRenewPK, AttrRenewSK}},
	TableNotary:     nil,
	TableControlAPI: nil,
}

// AllTables lists every table name (without the prefix).
func AllTables() []string {
	return []string{TableDomains, TableCertstore, TableNotary, TableControlAPI}
}

// CreateTableInput is the definition of table under prefix, on-demand (pay per request).
func CreateTableInput(prefix, table string) (*dynamodb.CreateTableInput, error) {
	indexes, ok := layout[table]
	if !ok {
		return nil, fmt.Errorf("no DynamoDB table %q in Portico's layout", table)
	}
	attrs := []string{AttrPK, AttrSK}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(prefix + table),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
	}
	for _, ix := range indexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName: aws.String(ix.name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(ix.pk), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(ix.sk), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		})
		for _, a := range []string{ix.pk, ix.sk} {
			if !slices.Contains(attrs, a) {
				attrs = append(attrs, a)
			}
		}
	}
	for _, a := range attrs {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a), AttributeType: types.ScalarAttributeTypeS,
		})
	}
	return in, nil
}

// CreateTables creates the named tables (all of them when none is named) under prefix
// when they do not exist, waits until they are active, and turns their time-to-live on.
// Existing tables are left as they are, except that a missing index is reported. It is
// safe to run again and from several processes at once.
func CreateTables(ctx context.Context, client *dynamodb.Client, prefix string, log *zap.Logger, tables ...string) error {
	if len(tables) == 0 {
		tables = AllTables()
	}
	for _, table := range tables {
		in, err := CreateTableInput(prefix, table)
		if err != nil {
			return err
		}
		name := *in.TableName
		_, err = client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		switch {
		case err == nil:
			log.Info("creating DynamoDB table", zap.String("table", name))
		case errors.As(err, &inUse):
		default:
			return Wrap(ctx, "create DynamoDB table "+name, err)
		}
		desc, err := waitActive(ctx, client, name)
		if err != nil {
			return err
		}
		if err := checkIndexes(desc, in); err != nil {
			return err
		}
		if err := enableTTL(ctx, client, name, log); err != nil {
			return err
		}
	}
	return nil
}

func waitActive(ctx context.Context, client *dynamodb.Client, name string) (*types.TableDescription, error) {
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, Wrap(ctx, "describe DynamoDB table "+name, err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			return out.Table, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for DynamoDB table %s: %w", name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// checkIndexes reports an existing table that lacks an index the layout needs (a table
// made by hand, or by an older layout).
func checkIndexes(desc *types.TableDescription, want *dynamodb.CreateTableInput) error {
	have := map[string]bool{}
	for _, g := range desc.GlobalSecondaryIndexes {
		have[aws.ToString(g.IndexName)] = true
	}
	var missing []string
	for _, g := range want.GlobalSecondaryIndexes {
		if !have[aws.ToString(g.IndexName)] {
			missing = append(missing, aws.ToString(g.IndexName))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("DynamoDB table %s exists without the indexes %v that Portico needs (see docs/dynamodb.md)", aws.ToString(want.TableName), missing)
	}
	return nil
}

// enableTTL turns time-to-live on for AttrExpires. An endpoint without the operation
// (dynalite) is told in the log: nothing depends on TTL for correctness, it only removes
// expired items (every reader checks expiry itself).
func enableTTL(ctx context.Context, client *dynamodb.Client, name string, log *zap.Logger) error {
	_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrExpires), Enabled: aws.Bool(true),
		},
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return Wrap(ctx, "enable time-to-live on "+name, err)
	}
	// Already enabled (a second run) answers ValidationException.
	var apiErr interface{ ErrorCode() string }
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ValidationException":
			return nil
		case "UnknownOperationException":
			log.Debug("this DynamoDB endpoint has no time-to-live; expired items stay until deleted", zap.String("table", name))
			return nil
		}
	}
	return Wrap(ctx, "enable time-to-live on "+name, err)
}
