package dynamolimiter_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/dynamolimiter"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/limitertest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestContract(t *testing.T) {
	limitertest.Run(t, func(t *testing.T) ratelimit.Limiter {
		return dynamolimiter.New(dynamotest.Table(t, dynamo.TableControlAPI))
	})
}
