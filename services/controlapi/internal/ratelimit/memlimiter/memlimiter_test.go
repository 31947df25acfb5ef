package memlimiter_test

import (
	"testing"

	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/limitertest"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/memlimiter"
)

func TestContract(t *testing.T) {
	limitertest.Run(t, func(t *testing.T) ratelimit.Limiter { return memlimiter.New(nil) })
}
