package redislease_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/notary/internal/leases"
	"github.com/portico-dev/portico/services/notary/internal/leases/leasetest"
	"github.com/portico-dev/portico/services/notary/internal/leases/redislease"
)

func TestContract(t *testing.T) {
	leasetest.Run(t, func(t *testing.T) leases.Store {
		rdb, prefix := redistest.New(t)
		return redislease.New(rdb, prefix)
	})
}
