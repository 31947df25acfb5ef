package dynamo

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/config"
)

// The storage backends a service may keep its state in.
const (
	StoreRedis    = "redis"
	StoreDynamoDB = "dynamodb"
)

// StoreOptions choose where a service keeps its state: -store redis|dynamodb, and for
// DynamoDB the -dynamodb-* settings (Redis has its own -redis-* ones).
type StoreOptions struct {
	Backend  string
	DynamoDB Options
}

// RegisterFlags adds -store and the -dynamodb-* flags.
func (s *StoreOptions) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Backend, "store", StoreRedis, "where state is kept: redis (the -redis-* settings) or dynamodb (the -dynamodb-* settings; no Redis is used)")
	s.DynamoDB.RegisterFlags(fs)
}

// Validate records bad settings.
func (s *StoreOptions) Validate(p *config.Problems) {
	p.CheckOneOf("store", s.Backend, StoreRedis, StoreDynamoDB)
	s.DynamoDB.Validate(p)
}

// IsDynamoDB reports whether the backend is DynamoDB.
func (s StoreOptions) IsDynamoDB() bool { return s.Backend == StoreDynamoDB }

// OpenTables builds the DynamoDB client and, with -dynamodb-create-tables, creates the named
// tables when missing. Every call through the client is bounded by -dynamodb-timeout.
func (o *Options) OpenTables(ctx context.Context, log *zap.Logger, tables ...string) (*dynamodb.Client, error) {
	client, err := o.Open(ctx)
	if err != nil {
		return nil, err
	}
	if o.CreateTables {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := CreateTables(cctx, client, o.TablePrefix, log, tables...); err != nil {
			return nil, fmt.Errorf("-dynamodb-create-tables: %w", err)
		}
	}
	return client, nil
}
