package dynamolease_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	"github.com/portico-dev/portico/services/notary/internal/leases"
	"github.com/portico-dev/portico/services/notary/internal/leases/dynamolease"
	"github.com/portico-dev/portico/services/notary/internal/leases/leasetest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	leasetest.Run(t, func(t *testing.T) leases.Store {
		return dynamolease.New(dynamotest.Table(t, dynamo.TableNotary))
	})
}
