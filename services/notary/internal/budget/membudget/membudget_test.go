package membudget_test

import (
	"testing"

	"github.com/portico-dev/portico/services/notary/internal/budget"
	"github.com/portico-dev/portico/services/notary/internal/budget/budgettest"
	"github.com/portico-dev/portico/services/notary/internal/budget/membudget"
)

func TestContract(t *testing.T) {
	budgettest.Run(t, func(_ *testing.T, l budget.Limits) budget.Store { return membudget.New(l) })
}
