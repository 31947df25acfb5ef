// Package dynamo is what Portico's DynamoDB stores share: the -dynamodb-* settings and the
// client built from them and the standard AWS configuration, the tables (their names, key
// schema, indexes and time-to-live attribute, in one place) and the command that creates
// them, and small helpers for items and conditional writes.
//
// Every table has the same key schema: a string partition key "pk" and a string sort key
// "sk". Which items a table holds, and its global secondary indexes, are in tables.go and
// docs/dynamodb.md; the stores live beside their Redis counterparts
// (pkg/domains/dynamostore, certstore's store/dynamostore and so on).
//
// DynamoDB is reached with aws-sdk-go-v2. The gateway never imports this package: it
// talks only to certstore, so the AWS SDK stays out of its binary.
package dynamo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/portico-dev/portico/pkg/config"
)

// Options are the DynamoDB settings every service shares.
type Options struct {
	// Region overrides the standard AWS configuration's region (AWS_REGION, the profile).
	Region string
	// Endpoint overrides the DynamoDB endpoint URL (dynalite or DynamoDB Local for local
	// runs, a VPC endpoint); empty lets the standard AWS configuration decide.
	Endpoint string
	// TablePrefix starts every table name, so several installations share an account.
	TablePrefix string
	// CreateTables creates missing tables at start (local runs and tests; production
	// creates them with `<binary> dynamodb create-tables` or the Helm chart's Job).
	CreateTables bool
	// Timeout bounds one DynamoDB call, retries included.
	Timeout time.Duration
}

// RegisterFlags adds the -dynamodb-* flags.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Region, "dynamodb-region", "", "AWS region of the DynamoDB tables (empty: the standard AWS configuration, AWS_REGION or the profile, decides)")
	fs.StringVar(&o.Endpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL override, for dynalite or DynamoDB Local (empty: the standard AWS endpoint)")
	fs.StringVar(&o.TablePrefix, "dynamodb-table-prefix", "portico-", "prefix of every DynamoDB table name, so several installations can share an account")
	fs.BoolVar(&o.CreateTables, "dynamodb-create-tables", false, "create missing DynamoDB tables at start (local runs; production runs `dynamodb create-tables` once)")
	fs.DurationVar(&o.Timeout, "dynamodb-timeout", 5*time.Second, "bound of one DynamoDB call, its retries included")
}

var tablePrefixRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{0,200}$`)

// Validate records bad settings.
func (o *Options) Validate(p *config.Problems) {
	if !tablePrefixRE.MatchString(o.TablePrefix) {
		p.Addf("dynamodb-table-prefix", "%q may hold only letters, digits, '_', '-' and '.' (DynamoDB table names), at most 200", o.TablePrefix)
	}
	if o.Endpoint != "" {
		if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Addf("dynamodb-endpoint", "%q is not an http or https URL", o.Endpoint)
		}
	}
	if o.Timeout <= 0 {
		p.Addf("dynamodb-timeout", "must be positive")
	}
}

// Open builds a client from the standard AWS configuration (environment, shared files,
// IRSA web identity, instance roles) and the overrides in o. It does not call DynamoDB.
func (o *Options) Open(ctx context.Context) (*dynamodb.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for DynamoDB: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region for DynamoDB: set -dynamodb-region or AWS_REGION")
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return dynamodb.NewFromConfig(cfg, func(c *dynamodb.Options) {
		if o.Endpoint != "" {
			c.BaseEndpoint = aws.String(o.Endpoint)
		}
		c.APIOptions = append(c.APIOptions, withTimeout(timeout))
	}), nil
}

// withTimeout bounds every operation (its retries included) by d, so a stalled
// DynamoDB cannot hold a request or a worker forever.
func withTimeout(d time.Duration) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("PorticoTimeout",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				ctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// Ping checks that the named table answers (DescribeTable), for health checks.
func Ping(client *dynamodb.Client, table string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return fmt.Errorf("dynamodb table %s: %w", table, err)
		}
		if s := out.Table.TableStatus; s != types.TableStatusActive && s != types.TableStatusUpdating {
			return fmt.Errorf("dynamodb table %s is %s", table, s)
		}
		return nil
	}
}

// IsConditionFailed reports whether err is a failed condition of a conditional write.
func IsConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Wrap returns err with what was being done, keeping a context error visible to
// errors.Is even when the SDK wrapped it in an operation error.
func Wrap(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w (%v)", what, ctx.Err(), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// KeyOf is the primary key of an item.
func KeyOf(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: S(pk), AttrSK: S(sk)}
}

// S is a string attribute value.
func S(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// N is a number attribute value.
func N(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

// EpochSeconds is the time-to-live attribute's value for t (DynamoDB's TTL reads Unix
// seconds, rounded up so an item is never removed before t).
func EpochSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// SortableMillis formats t as fixed-width decimal Unix milliseconds, so that strings sort
// as times do (times before 1970 sort as 1970).
func SortableMillis(t time.Time) string { return sortable(t.UnixMilli()) }

// SortableMicros is SortableMillis in microseconds.
func SortableMicros(t time.Time) string { return sortable(t.UnixMicro()) }

func sortable(n int64) string {
	if n < 0 {
		n = 0
	}
	return fmt.Sprintf("%019d", n)
}

// NameSuffixMax sorts after every character a hostname or wildcard can hold, so
// "<prefix>#" + NameSuffixMax bounds every "<prefix>#<name>" sort key from above.
const NameSuffixMax = "~"

// TrimPrefix returns s without prefix and whether it had it.
func TrimPrefix(s, prefix string) (string, bool) {
	if !strings.HasPrefix(s, prefix) {
		return "", false
	}
	return s[len(prefix):], true
}
