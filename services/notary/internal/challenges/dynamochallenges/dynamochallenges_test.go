package dynamochallenges_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/challengetest"
	"github.com/portico-dev/portico/services/notary/internal/challenges/dynamochallenges"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	challengetest.Run(t, func(t *testing.T) challenges.Store {
		return dynamochallenges.New(dynamotest.Table(t, dynamo.TableNotary))
	})
}
