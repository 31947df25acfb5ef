package dynamobudget_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	"github.com/portico-dev/portico/services/notary/internal/budget"
	"github.com/portico-dev/portico/services/notary/internal/budget/budgettest"
	"github.com/portico-dev/portico/services/notary/internal/budget/dynamobudget"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	budgettest.Run(t, func(t *testing.T, l budget.Limits) budget.Store {
		return dynamobudget.New(dynamotest.Table(t, dynamo.TableNotary), l)
	})
}
