package grpcserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/errkind"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/mtls/mtlstest"
)

// testNotary answers each method differently so the tests can see error mapping.
type testNotary struct {
	notaryv1.UnimplementedNotaryServiceServer
	slow chan struct{}
}

func (n *testNotary) EnqueueDomain(ctx context.Context, req *notaryv1.EnqueueDomainRequest) (*notaryv1.EnqueueDomainResponse, error) {
	switch req.GetHostname() {
	case "bad":
		return nil, errkind.Invalid("hostname", "single-label", "needs a dot")
	case "secret":
		return nil, errors.New("redis password is hunter2")
	case "panic":
		panic("boom")
	case "slow":
		close(n.slow)
		time.Sleep(500 * time.Millisecond)
	}
	return &notaryv1.EnqueueDomainResponse{Progress: &notaryv1.DomainProgress{Hostname: req.GetHostname()}}, nil
}

func startServer(t *testing.T, cfg grpcserver.Config) (*grpcserver.Server, context.CancelFunc, chan error) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv, err := grpcserver.New(zaptest.NewLogger(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService(&notaryv1.NotaryService_ServiceDesc, &testNotary{slow: make(chan struct{})})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv, cancel, done
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func waitServing(t *testing.T, conn *grpc.ClientConn, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never became %v (last: %v, %v)", want, resp.GetStatus(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthFollowsChecks(t *testing.T) {
	healthy := make(chan error, 1)
	healthy <- errors.New("redis down")
	var last error
	srv, _, _ := startServer(t, grpcserver.Config{
		HealthListen:  "127.0.0.1:0",
		CheckInterval: 50 * time.Millisecond,
		Checks: []grpcserver.Check{{Name: "redis", Probe: func(context.Context) error {
			select {
			case last = <-healthy:
			default:
			}
			return last
		}}},
	})
	for _, addr := range []string{srv.Addr().String(), srv.HealthAddr().String()} {
		conn := dial(t, addr, insecure.NewCredentials())
		waitServing(t, conn, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthy <- nil
	for _, addr := range []string{srv.Addr().String(), srv.HealthAddr().String()} {
		conn := dial(t, addr, insecure.NewCredentials())
		waitServing(t, conn, healthpb.HealthCheckResponse_SERVING)
	}
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	_, err := grpcserver.New(zap.NewNop(), grpcserver.Config{Listen: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("plaintext on all interfaces: err = %v, want a refusal naming loopback", err)
	}
}

func TestErrorsCrossingTheWire(t *testing.T) {
	srv, _, _ := startServer(t, grpcserver.Config{Registerer: prometheus.NewRegistry()})
	client := notaryv1.NewNotaryServiceClient(dial(t, srv.Addr().String(), insecure.NewCredentials()))

	_, err := client.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "bad"})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("bad input: code %v, want InvalidArgument", st.Code())
	}
	var field string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			field = br.GetFieldViolations()[0].GetField()
		}
	}
	if field != "hostname" {
		t.Fatalf("field violation names %q, want hostname", field)
	}
	back := errkind.FromGRPC(err)
	var e *errkind.Error
	if !errors.As(back, &e) || e.Kind != errkind.InvalidArgument || e.Violations[0].Rule != "single-label" {
		t.Fatalf("FromGRPC = %#v, want the kind and rule back", back)
	}

	_, err = client.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "secret"})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "hunter2") {
		t.Fatalf("unclassified error: %v; want a bare INTERNAL", st)
	}

	_, err = client.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "panic"})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "boom") {
		t.Fatalf("panic: %v; want a bare INTERNAL", st)
	}

	_, err = client.GetDomainProgress(t.Context(), &notaryv1.GetDomainProgressRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unimplemented method: %v", err)
	}
}

func TestPerMethodAllowList(t *testing.T) {
	ca := mtlstest.NewCA(t)
	serverFiles := ca.Issue("notary")
	tlsCfg, err := mtls.ServerConfig(serverFiles)
	if err != nil {
		t.Fatal(err)
	}
	srv, _, _ := startServer(t, grpcserver.Config{
		TLS: tlsCfg,
		Allow: map[string][]string{
			"/portico.notary.v1.NotaryService/EnqueueDomain": {"controlapi"},
			"/portico.notary.v1.NotaryService/":              {"operator"},
		},
	})
	client := func(id string) notaryv1.NotaryServiceClient {
		cfg, err := mtls.ClientConfig(ca.Issue(id), "")
		if err != nil {
			t.Fatal(err)
		}
		return notaryv1.NewNotaryServiceClient(dial(t, srv.Addr().String(), credentials.NewTLS(cfg)))
	}
	tests := []struct {
		name     string
		identity string
		call     func(notaryv1.NotaryServiceClient) error
		want     codes.Code
	}{
		{"listed method, listed caller", "controlapi", enqueue, codes.OK},
		{"listed method, other caller", "gateway", enqueue, codes.PermissionDenied},
		{"method listed exactly, service prefix not consulted", "operator", enqueue, codes.PermissionDenied},
		{"service prefix, listed caller", "operator", verify, codes.Unimplemented},
		{"service prefix, other caller", "controlapi", verify, codes.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call(client(tc.identity))); got != tc.want {
				t.Fatalf("code = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("health open to any verified caller", func(t *testing.T) {
		cfg, _ := mtls.ClientConfig(ca.Issue("kubelet"), "")
		waitServing(t, dial(t, srv.Addr().String(), credentials.NewTLS(cfg)), healthpb.HealthCheckResponse_SERVING)
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg, _ := mtls.ClientConfig(serverFiles, "")
		cfg.GetClientCertificate = nil
		conn := dial(t, srv.Addr().String(), credentials.NewTLS(cfg))
		if _, err := notaryv1.NewNotaryServiceClient(conn).EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{}); err == nil {
			t.Fatal("a caller without a certificate got through")
		}
	})
}

func enqueue(c notaryv1.NotaryServiceClient) error {
	_, err := c.EnqueueDomain(context.Background(), &notaryv1.EnqueueDomainRequest{Hostname: "ok"})
	return err
}

func verify(c notaryv1.NotaryServiceClient) error {
	_, err := c.VerifyDomain(context.Background(), &notaryv1.VerifyDomainRequest{Hostname: "ok"})
	return err
}

func TestGracefulStopFinishesInFlightCalls(t *testing.T) {
	srv, err := grpcserver.New(zaptest.NewLogger(t), grpcserver.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	impl := &testNotary{slow: make(chan struct{})}
	srv.RegisterService(&notaryv1.NotaryService_ServiceDesc, impl)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	client := notaryv1.NewNotaryServiceClient(dial(t, srv.Addr().String(), insecure.NewCredentials()))
	callErr := make(chan error, 1)
	go func() {
		_, err := client.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "slow"})
		callErr <- err
	}()
	<-impl.slow
	cancel()
	if err := <-callErr; err != nil {
		t.Fatalf("in-flight call failed during graceful stop: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after a clean stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of cancellation")
	}
}

func TestMaxRecvMsgSize(t *testing.T) {
	srv, _, _ := startServer(t, grpcserver.Config{MaxRecvMsgSize: 1024})
	c := notaryv1.NewNotaryServiceClient(dial(t, srv.Addr().String(), insecure.NewCredentials()))
	if _, err := c.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "shop.example.com"}); err != nil {
		t.Fatalf("small message: %v", err)
	}
	_, err := c.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: strings.Repeat("a", 2048)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("message over the cap: %v, want RESOURCE_EXHAUSTED", err)
	}
}
