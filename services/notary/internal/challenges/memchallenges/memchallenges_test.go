package memchallenges_test

import (
	"testing"

	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/challengetest"
	"github.com/portico-dev/portico/services/notary/internal/challenges/memchallenges"
)

func TestContract(t *testing.T) {
	challengetest.Run(t, func(*testing.T) challenges.Store { return memchallenges.New() })
}
