package redisdelegation_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/delegation/delegationtest"
	"github.com/portico-dev/portico/services/notary/internal/delegation/redisdelegation"
)

func TestContract(t *testing.T) {
	delegationtest.Run(t, func(t *testing.T) delegation.Store {
		rdb, prefix := redistest.New(t)
		return redisdelegation.New(rdb, prefix)
	})
}
