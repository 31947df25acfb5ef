package redischallenges_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/challengetest"
	"github.com/portico-dev/portico/services/notary/internal/challenges/redischallenges"
)

func TestContract(t *testing.T) {
	challengetest.Run(t, func(t *testing.T) challenges.Store {
		rdb, prefix := redistest.New(t)
		return redischallenges.New(rdb, prefix)
	})
}
