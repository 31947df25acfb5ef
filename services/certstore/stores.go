package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/redisconn"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/dynamostore"
	"github.com/portico-dev/portico/services/certstore/internal/store/redisstore"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
	"github.com/portico-dev/portico/services/certstore/internal/watch/dynamolog"
)

// stores are certstore's records and change log, on the backend -store chose, and the
// health check that reflects it.
type stores struct {
	records store.Store
	changes watch.Log
	check   grpcserver.Check
	close   func()
}

func openStores(ctx context.Context, cfg Config, log *zap.Logger) (stores, error) {
	if !cfg.Store.IsDynamoDB() {
		rdb := cfg.Redis.Open()
		return stores{
			records: redisstore.New(rdb, cfg.Redis.KeyPrefix),
			changes: watch.NewRedisLog(rdb, cfg.Redis.KeyPrefix, cfg.WatchLogLength),
			check:   grpcserver.Check{Name: "redis", Probe: redisconn.Ping(rdb)},
			close:   func() { _ = rdb.Close() },
		}, nil
	}
	o := cfg.Store.DynamoDB
	client, err := o.OpenTables(ctx, log, dynamo.TableCertstore)
	if err != nil {
		return stores{}, err
	}
	table := dynamo.NewTable(client, o.TablePrefix, dynamo.TableCertstore)
	return stores{
		records: dynamostore.New(table),
		changes: dynamolog.New(table, dynamolog.Options{Retention: cfg.WatchLogRetention, PollInterval: cfg.WatchPollInterval}),
		check:   grpcserver.Check{Name: "dynamodb", Probe: dynamo.Ping(client, table.Name)},
		close:   func() {},
	}, nil
}

// readyProbe is /readyz: the store answers, and so does every other dependency.
func readyProbe(st stores, checks []grpcserver.Check) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := st.check.Probe(ctx); err != nil {
			return err
		}
		for _, c := range checks {
			if err := c.Probe(ctx); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		return nil
	}
}
