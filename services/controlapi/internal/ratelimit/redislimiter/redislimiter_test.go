package redislimiter_test

import (
	"testing"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/limitertest"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit/redislimiter"
)

func TestContract(t *testing.T) {
	limitertest.Run(t, func(t *testing.T) ratelimit.Limiter {
		rdb, prefix := redistest.New(t)
		return redislimiter.New(rdb, prefix)
	})
}
