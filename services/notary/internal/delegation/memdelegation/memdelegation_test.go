package memdelegation_test

import (
	"testing"

	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/delegationtest"
	"github.com/portico-dev/portico/services/notary/internal/delegation/memdelegation"
)

func TestContract(t *testing.T) {
	delegationtest.Run(t, func(t *testing.T) delegation.Store { return memdelegation.New() })
}
