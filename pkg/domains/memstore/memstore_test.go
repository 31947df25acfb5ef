package memstore_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/memstore"
	"github.com/portico-dev/portico/pkg/domains/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) domains.Store { return memstore.New() })
}
