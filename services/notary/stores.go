package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/dynamostore"
	"github.com/portico-dev/portico/pkg/domains/redisstore"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/redisconn"
	"github.com/portico-dev/portico/services/notary/internal/budget"
	"github.com/portico-dev/portico/services/notary/internal/budget/dynamobudget"
	"github.com/portico-dev/portico/services/notary/internal/budget/redisbudget"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/dynamochallenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/redischallenges"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/dynamodelegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/redisdelegation"
	"github.com/portico-dev/portico/services/notary/internal/leases"
	"github.com/portico-dev/portico/services/notary/internal/leases/dynamolease"
	"github.com/portico-dev/portico/services/notary/internal/leases/redislease"
)

// stores are everything the notary keeps, on the backend -store chose, and the health
// check that reflects it.
type stores struct {
	domains    domains.Store
	challenges challenges.Store
	delegation delegation.Store
	leases     leases.Store
	budget     budget.Store
	check      grpcserver.Check
	close      func()
}

// notaryTables are the DynamoDB tables the notary uses.
var notaryTables = []string{dynamo.TableDomains, dynamo.TableNotary}

func openStores(ctx context.Context, cfg Config, log *zap.Logger) (stores, error) {
	if !cfg.Store.IsDynamoDB() {
		rdb := cfg.Redis.Open()
		notaryPrefix := cfg.Redis.KeyPrefix + ":notary"
		return stores{
			domains:    redisstore.New(rdb, cfg.Redis.KeyPrefix),
			challenges: redischallenges.New(rdb, notaryPrefix),
			delegation: redisdelegation.New(rdb, notaryPrefix),
			leases:     redislease.New(rdb, notaryPrefix),
			budget:     redisbudget.New(rdb, notaryPrefix, cfg.Worker.Limits),
			check:      grpcserver.Check{Name: "redis", Probe: redisconn.Ping(rdb)},
			close:      func() { _ = rdb.Close() },
		}, nil
	}
	o := cfg.Store.DynamoDB
	client, err := o.OpenTables(ctx, log, notaryTables...)
	if err != nil {
		return stores{}, err
	}
	own := dynamo.NewTable(client, o.TablePrefix, dynamo.TableNotary)
	return stores{
		domains:    dynamostore.New(dynamo.NewTable(client, o.TablePrefix, dynamo.TableDomains)),
		challenges: dynamochallenges.New(own),
		delegation: dynamodelegation.New(own),
		leases:     dynamolease.New(own),
		budget:     dynamobudget.New(own, cfg.Worker.Limits),
		check:      grpcserver.Check{Name: "dynamodb", Probe: dynamo.Ping(client, own.Name)},
		close:      func() {},
	}, nil
}
