package main

import (
	"testing"

	"github.com/portico-dev/portico/pkg/proctest"
)

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) { proctest.Main(m) }
