package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	proc "github.com/portico-dev/portico/pkg/proctest"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// TestReadiness: ready once the Watch stream to certstore is up (well under a second
// after start), not ready while it is down with nothing cached, and ready again with a
// warm cache even when certstore is gone. gRPC health and /readyz agree.
func TestReadiness(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	ca := testpki.NewCA(t)
	cs.put(ca, "warm.example.com", nil)
	cs.stop()
	up := startRecorder(t, "upstream", nil)

	gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", false)
	time.Sleep(1500 * time.Millisecond)
	if st, _ := gw.healthStatus(); st == healthpb.HealthCheckResponse_SERVING {
		t.Fatal("SERVING with certstore down and an empty cache")
	}
	if code := gw.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with certstore down and an empty cache", code)
	}

	cs.start()
	if err := gw.waitHealth(healthpb.HealthCheckResponse_SERVING, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if code := gw.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz = %d after certstore came back", code)
	}
	if _, err := gw.handshake("warm.example.com"); err != nil {
		t.Fatal(err)
	}

	cs.stop()
	time.Sleep(1500 * time.Millisecond) // the Watch stream notices, health is re-probed
	if st, err := gw.healthStatus(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v (%v) with a warm cache and certstore down, want SERVING", st, err)
	}
	if code := gw.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz = %d with a warm cache and certstore down", code)
	}
	if v := gw.metric("gateway_certstore_watch_connected", ""); v != 0 {
		t.Errorf("gateway_certstore_watch_connected = %v with certstore down", v)
	}
}

// TestStartupIsLazyAndFast: with certificates waiting in certstore the gateway is
// SERVING in well under a second and has looked none of them up.
func TestStartupIsLazyAndFast(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	ca := testpki.NewCA(t)
	for i := range 50 {
		cs.put(ca, fmt.Sprintf("d%03d.example.com", i), nil)
	}
	up := startRecorder(t, "upstream", nil)
	start := time.Now()
	gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", true)
	took := time.Since(start)
	t.Logf("SERVING %v after start", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("ready after %v, want under a second", took)
	}
	if n := cs.lookups(); n != 0 {
		t.Errorf("%d Lookups at start, want none (lazy)", n)
	}
	if n := gw.metric("gateway_cert_cache_entries", `cache="positive"`); n != 0 {
		t.Errorf("%v certificates cached at start", n)
	}
}

// TestGracefulShutdown: on shutdown the gateway stops accepting, lets an in-flight
// request finish, and returns well within 5 seconds.
func TestGracefulShutdown(t *testing.T) {
	released := make(chan struct{})
	slow := func(w http.ResponseWriter, r *http.Request) {
		<-released
		fmt.Fprint(w, "finished")
	}
	s := newProxyStack(t, slow)
	c := s.gw.client("shop.example.com", false)

	result := make(chan string, 1)
	go func() {
		resp, err := c.Get("https://shop.example.com/in-flight")
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b := make([]byte, 64)
		n, _ := resp.Body.Read(b)
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b[:n])
	}()
	waitFor(t, func() bool { return len(s.up.requests()) == 1 })

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- s.gw.stop(5 * time.Second) }()
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", s.gw.https, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	time.Sleep(200 * time.Millisecond)
	close(released)
	if got := <-result; got != "200 finished" {
		t.Fatalf("in-flight request got %q, want it finished", got)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
}

// TestShutdownDeadline: a request that does not finish within the grace period is cut,
// and the gateway still returns within 5 seconds.
func TestShutdownDeadline(t *testing.T) {
	stuck := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	s := newProxyStack(t, stuck)
	go s.gw.client("shop.example.com", false).Get("https://shop.example.com/stuck") //nolint:errcheck // cut by design
	waitFor(t, func() bool { return len(s.up.requests()) == 1 })
	start := time.Now()
	if err := s.gw.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("returned %v after shutdown began", time.Since(start).Round(time.Millisecond))
}

// TestProcessExitsOnSIGTERM runs the built binary as the e2e lifecycle test does: ready
// against a certstore without certificates, then a clean exit within 5 s of SIGTERM.
func TestProcessExitsOnSIGTERM(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	health := proc.FreeAddr(t)
	p := proc.Start(t, "gateway", proc.Build(t, "gateway"), nil,
		"-health-listen", health, "-admin-listen", proc.FreeAddr(t), "-http-listen", proc.FreeAddr(t),
		"-https-listen", proc.FreeAddr(t), "-certstore-addr", cs.addr)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := proc.WaitServing(ctx, p, health); err != nil {
		t.Fatal(err)
	}
	took, err := p.Stop(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
}

// TestMutualTLSToCertstore: with mTLS, the gateway's own identity may read certificates;
// another identity is refused by certstore, so nothing is served.
func TestMutualTLSToCertstore(t *testing.T) {
	ids := mtlsFiles(t, "certstore", "gateway", "notary")
	cs := startCertstore(t, certstoreOptions{serverTLS: ids["certstore"], writerTLS: ids["notary"]})
	ca := testpki.NewCA(t)
	cs.put(ca, "secure.example.com", nil)
	up := startRecorder(t, "upstream", nil)

	tests := []struct {
		identity string
		serves   bool
	}{
		{identity: "gateway", serves: true},
		{identity: "notary", serves: false},
	}
	for _, tt := range tests {
		t.Run(tt.identity, func(t *testing.T) {
			f := ids[tt.identity]
			gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", tt.serves,
				"-certstore-tls-cert", f.Cert, "-certstore-tls-key", f.Key, "-certstore-tls-ca", f.CA)
			name, err := gw.handshake("secure.example.com")
			if served := err == nil && name == "secure.example.com"; served != tt.serves {
				t.Fatalf("served = %v (%v), want %v", served, err, tt.serves)
			}
			if !tt.serves && gw.readyz() != http.StatusServiceUnavailable {
				t.Error("ready although certstore refuses this identity")
			}
		})
	}
}

// TestBinaryNeverLinksStores: the gateway reaches certstore only; Redis, AWS and ACME
// clients are not even linked into it.
func TestBinaryNeverLinksStores(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, banned := range []string{"github.com/redis/", "github.com/aws/", "github.com/go-acme/", "/services/certstore", "/services/notary"} {
			if strings.Contains(p.ImportPath, banned) {
				t.Errorf("the gateway binary links %s", p.ImportPath)
			}
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
