package main

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/dynamostore"
	"github.com/portico-dev/portico/pkg/domains/redisstore"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/redisconn"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/dynamolimiter"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/redislimiter"
)

// stores are what controlapi keeps, on the backend -store chose, and the health check
// that reflects it.
type stores struct {
	domains domains.Store
	limiter ratelimit.Limiter
	check   grpcserver.Check
	close   func()
}

// controlapiTables are the DynamoDB tables controlapi uses.
var controlapiTables = []string{dynamo.TableDomains, dynamo.TableControlAPI}

func openStores(ctx context.Context, cfg Config, log *zap.Logger) (stores, error) {
	if !cfg.Store.IsDynamoDB() {
		rdb := cfg.Redis.Open()
		return stores{
			domains: redisstore.New(rdb, cfg.Redis.KeyPrefix),
			limiter: redislimiter.New(rdb, cfg.Redis.KeyPrefix),
			check:   grpcserver.Check{Name: "redis", Probe: redisconn.Ping(rdb)},
			close:   func() { closeRedis(rdb) },
		}, nil
	}
	o := cfg.Store.DynamoDB
	client, err := o.OpenTables(ctx, log, controlapiTables...)
	if err != nil {
		return stores{}, err
	}
	table := func(name string) dynamo.Table { return dynamo.NewTable(client, o.TablePrefix, name) }
	return stores{
		domains: dynamostore.New(table(dynamo.TableDomains)),
		limiter: dynamolimiter.New(table(dynamo.TableControlAPI)),
		check:   grpcserver.Check{Name: "dynamodb", Probe: dynamo.Ping(client, o.TablePrefix+dynamo.TableDomains)},
		close:   func() {},
	}, nil
}

func closeRedis(rdb redis.UniversalClient) { _ = rdb.Close() }
