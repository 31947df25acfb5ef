package grpcserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-dev/portico/pkg/grpcserver"
)

// TestLivenessIgnoresDependencies: with a dependency down, the overall status (readiness)
// is NOT_SERVING while the liveness service stays SERVING on both listeners, so a
// Kubernetes liveness probe does not restart a pod for someone else's outage.
func TestLivenessIgnoresDependencies(t *testing.T) {
	srv, _, _ := startServer(t, grpcserver.Config{
		HealthListen:  "127.0.0.1:0",
		CheckInterval: 50 * time.Millisecond,
		Checks: []grpcserver.Check{{Name: "redis", Probe: func(context.Context) error {
			return errors.New("redis down")
		}}},
	})
	for _, addr := range []string{srv.Addr().String(), srv.HealthAddr().String()} {
		conn := dial(t, addr, insecure.NewCredentials())
		waitServing(t, conn, healthpb.HealthCheckResponse_NOT_SERVING)
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: grpcserver.LivenessService})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness on %s = %v, %v; want SERVING while a dependency is down", addr, resp.GetStatus(), err)
		}
	}

}
