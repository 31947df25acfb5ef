package redisstore_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/redisstore"
	"github.com/portico-dev/portico/services/certstore/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		rdb, prefix := redistest.New(t)
		return redisstore.New(rdb, prefix)
	})
}
