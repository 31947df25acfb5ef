package dynamodelegation_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/delegationtest"
	"github.com/portico-dev/portico/services/notary/internal/delegation/dynamodelegation"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	delegationtest.Run(t, func(t *testing.T) delegation.Store {
		return dynamodelegation.New(dynamotest.Table(t, dynamo.TableNotary))
	})
}
