package memlease_test

import (
	"testing"

	"github.com/portico-dev/portico/services/notary/internal/leases"
	"github.com/portico-dev/portico/services/notary/internal/leases/leasetest"
	"github.com/portico-dev/portico/services/notary/internal/leases/memlease"
)

func TestContract(t *testing.T) {
	leasetest.Run(t, func(*testing.T) leases.Store { return memlease.New() })
}
