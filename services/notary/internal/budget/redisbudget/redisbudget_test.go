package redisbudget_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/notary/internal/budget"
	"github.com/portico-dev/portico/services/notary/internal/budget/budgettest"
	"github.com/portico-dev/portico/services/notary/internal/budget/redisbudget"
)

func TestContract(t *testing.T) {
	budgettest.Run(t, func(t *testing.T, l budget.Limits) budget.Store {
		rdb, prefix := redistest.New(t)
		return redisbudget.New(rdb, prefix, l)
	})
}
