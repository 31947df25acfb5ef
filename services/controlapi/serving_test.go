package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	"github.com/portico-dev/portico/pkg/mtls/mtlstest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
)

// TestPublicTLS serves gRPC and JSON over TLS with -tls-cert/-tls-key (no client
// certificates: keys authenticate), the JSON gateway reaching gRPC through its pinned
// loopback hop; a plaintext client is refused.
func TestPublicTLS(t *testing.T) {
	ca := mtlstest.NewCA(t)
	files := ca.Issue("controlapi") // valid for 127.0.0.1 and localhost
	h := startTLSControlAPI(t, files.Cert, files.Key)
	caPEM, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tenants := controlv1.NewTenantServiceClient(conn)
	created, err := tenants.CreateTenant(withKey(t.Context(), testAdminKey), &controlv1.CreateTenantRequest{TenantId: "acme"})
	if err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	req, _ := http.NewRequest("POST", "https://"+h.httpAddr+"/v1/domains", strings.NewReader(`{"hostname":"shop.example.com"}`))
	req.Header.Set("Authorization", "Bearer "+created.GetApiKey())
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("JSON over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JSON over TLS: HTTP %d (the gateway's hop to gRPC failed?)", resp.StatusCode)
	}

	plain, _ := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a plaintext client was served on the TLS listener")
	}
}

func startTLSControlAPI(t *testing.T, cert, key string) *harness {
	t.Helper()
	_, prefix := redistest.New(t)
	h := &harness{t: t, grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", h.grpcAddr, "-http-listen", h.httpAddr, "-admin-listen", freeAddr(t),
			"-redis-addr", redistest.Addr(), "-redis-key-prefix", prefix, "-notary-addr", freeAddr(t), "-certstore-addr", freeAddr(t),
			"-admin-key", testAdminKey, "-edge-cname", "edge.example.net", "-tls-cert", cert, "-tls-key", key, "-log-level", "error"})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	health, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { health.Close() })
	waitHealth(t, done, health, healthpb.HealthCheckResponse_SERVING)
	return h
}

// TestHealthReflectsRedis: with Redis unreachable the service starts and reports
// NOT_SERVING on gRPC health and /readyz.
func TestHealthReflectsRedis(t *testing.T) {
	grpcAddr, adminAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", grpcAddr, "-http-listen", freeAddr(t), "-admin-listen", adminAddr,
			"-redis-addr", freeAddr(t), "-redis-dial-timeout", "200ms", "-notary-addr", freeAddr(t), "-certstore-addr", freeAddr(t),
			"-edge-cname", "edge.example.net", "-log-level", "error"})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitHealth(t, done, conn, healthpb.HealthCheckResponse_NOT_SERVING)
	resp, err := http.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: HTTP %d", resp.StatusCode)
	}
}

// TestMetricsOnTheAdminPort: /metrics shows the request and hand-off counters.
func TestMetricsOnTheAdminPort(t *testing.T) {
	h := startControlAPI(t, harnessOptions{})
	key := h.createTenant("acme")
	h.createDomain(key, "shop.example.com")
	resp, err := http.Get("http://" + h.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="CreateDomain"`,
		`portico_controlapi_handoffs_total{call="enqueue",result="fallback"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}
