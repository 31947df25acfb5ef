package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/mtls/mtlstest"
	proc "github.com/portico-dev/portico/pkg/proctest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// This file is the integration harness: the real certstore binary (built from
// services/certstore) on real Redis under a key prefix of the test's own, a recording
// upstream and notary on loopback, and the gateway's run() in this process, driven over
// real TCP.

// certstoreProc is a certstore process the test can stop and start again on the same
// address and data.
type certstoreProc struct {
	t     *testing.T
	addr  string
	admin string
	args  []string
	p     *proc.Process
	tls   *mtls.Files // the writer's identity when certstore runs with mTLS
}

type certstoreOptions struct {
	// serverTLS and writerTLS switch certstore to mTLS.
	serverTLS, writerTLS *mtls.Files
}

func startCertstore(t *testing.T, o certstoreOptions) *certstoreProc {
	t.Helper()
	_, prefix := redistest.New(t)
	c := &certstoreProc{t: t, addr: proc.FreeAddr(t), admin: proc.FreeAddr(t), tls: o.writerTLS}
	c.args = []string{
		"-listen", c.addr, "-admin-listen", c.admin,
		"-redis-addr", redistest.Addr(), "-redis-key-prefix", prefix,
		"-kek-file", filepath.Join(t.TempDir(), "kek"), "-kek-create",
		"-log-level", "warn",
	}
	if o.serverTLS != nil {
		c.args = append(c.args, "-tls-cert", o.serverTLS.Cert, "-tls-key", o.serverTLS.Key, "-tls-ca", o.serverTLS.CA)
	}
	c.start()
	return c
}

func (c *certstoreProc) start() {
	c.t.Helper()
	c.p = proc.Start(c.t, "certstore", proc.Build(c.t, "certstore"), nil, c.args...)
	ctx, cancel := context.WithTimeout(c.t.Context(), 20*time.Second)
	defer cancel()
	if err := c.waitServing(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// waitServing asks certstore's health on its main listener (with mTLS when it has it).
func (c *certstoreProc) waitServing(ctx context.Context) error {
	conn := c.dial()
	defer conn.Close()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if c.p.Exited() {
			return fmt.Errorf("certstore exited: %s", c.p.Log())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("certstore not serving at %s: %v", c.addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *certstoreProc) dial() *grpc.ClientConn {
	c.t.Helper()
	creds := insecure.NewCredentials()
	if c.tls != nil {
		cfg, err := mtls.ClientConfig(*c.tls, "")
		if err != nil {
			c.t.Fatal(err)
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		c.t.Fatal(err)
	}
	return conn
}

func (c *certstoreProc) stop() {
	c.t.Helper()
	if _, err := c.p.Stop(5 * time.Second); err != nil {
		c.t.Fatalf("stop certstore: %v", err)
	}
}

// put issues a certificate for name (a hostname or `*.base`), stores it, and sets the
// route of name.
func (c *certstoreProc) put(ca *testpki.CA, name string, route *certstorev1.Route) testpki.Leaf {
	c.t.Helper()
	leaf := ca.Issue(c.t, name)
	conn := c.dial()
	defer conn.Close()
	w := certstorev1.NewCertWriteServiceClient(conn)
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	if route == nil {
		route = &certstorev1.Route{}
	}
	route.Hostname = name
	if route.TenantId == "" {
		route.TenantId = "tenant-1"
	}
	if _, err := w.SetRoute(ctx, &certstorev1.SetRouteRequest{Route: route}); err != nil {
		c.t.Fatalf("SetRoute %s: %v", name, err)
	}
	if _, err := w.PutCertificate(ctx, &certstorev1.PutCertificateRequest{
		Hostname: name, CertificateChain: leaf.Chain, PrivateKey: leaf.Key, FencingToken: 1,
	}); err != nil {
		c.t.Fatalf("PutCertificate %s: %v", name, err)
	}
	return leaf
}

// lookups is how many Lookup calls certstore has started, from its own metrics.
func (c *certstoreProc) lookups() int {
	c.t.Helper()
	return int(scrape(c.t, c.admin, "grpc_server_started_total", `grpc_method="Lookup"`))
}

// scrape sums the samples of a metric whose labels contain match, from an admin
// listener's /metrics.
func scrape(t *testing.T, admin, metric, match string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", admin, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		if !strings.Contains(line, match) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// recorder is an HTTP server on loopback that remembers the requests it got.
type recorder struct {
	addr string
	mu   sync.Mutex
	reqs []*http.Request
	// handle answers; nil: 200 with body "<name>".
	handle http.HandlerFunc
	name   string
}

func startRecorder(t *testing.T, name string, handle http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{name: name, handle: handle}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = lis.Addr().String()
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(lis) //nolint:errcheck // ends at Close
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	if r.handle != nil {
		r.handle(w, req)
		return
	}
	fmt.Fprint(w, r.name)
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

func (r *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	reqs := r.requests()
	if len(reqs) == 0 {
		t.Fatalf("%s got no request", r.name)
	}
	return reqs[len(reqs)-1]
}

// gateway is a gateway running in this process.
type gateway struct {
	t                          *testing.T
	http, https, admin, health string
	ca                         *testpki.CA
	cancel                     context.CancelFunc
	done                       chan error
}

// startGateway runs the gateway against certstore addr with the default upstream up and
// the notary at notary, plus extra flags; it returns once gRPC health says SERVING,
// unless waitReady is false.
func startGateway(t *testing.T, ca *testpki.CA, certstoreAddr, upstream, notary string, waitReady bool, extra ...string) *gateway {
	t.Helper()
	g := &gateway{
		t: t, ca: ca,
		http: proc.FreeAddr(t), https: proc.FreeAddr(t), admin: proc.FreeAddr(t), health: proc.FreeAddr(t),
		done: make(chan error, 1),
	}
	args := append([]string{
		"-http-listen", g.http, "-https-listen", g.https, "-admin-listen", g.admin, "-health-listen", g.health,
		"-certstore-addr", certstoreAddr, "-upstream", upstream, "-notary-http-addr", notary,
		"-log-level", "error",
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- run(ctx, args) }()
	t.Cleanup(func() {
		if err := g.stop(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	if waitReady {
		if err := g.waitHealth(healthpb.HealthCheckResponse_SERVING, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return g
	}
	// Not waiting for readiness: wait until the admin listener answers (it is alive).
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + g.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway admin never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels run's context (what SIGTERM does) and waits for it to return.
func (g *gateway) stop(limit time.Duration) error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("gateway still running %v after shutdown began", limit)
	}
}

func (g *gateway) healthStatus() (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(g.health, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return resp.GetStatus(), err
}

func (g *gateway) waitHealth(want healthpb.HealthCheckResponse_ServingStatus, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got, err := g.healthStatus()
		if err == nil && got == want {
			return nil
		}
		select {
		case err := <-g.done:
			return fmt.Errorf("gateway exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway health is %v (%v), want %v", got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) readyz() int {
	g.t.Helper()
	resp, err := http.Get("http://" + g.admin + "/readyz")
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (g *gateway) metric(name, match string) float64 {
	g.t.Helper()
	return scrape(g.t, g.admin, name, match)
}

// handshake connects with SNI serverName and returns the leaf's first DNS name.
func (g *gateway) handshake(serverName string) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.https, &tls.Config{
		ServerName: serverName,
		RootCAs:    g.ca.Pool,
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].DNSNames[0], nil
}

// client is an HTTPS client whose connections go to the gateway with SNI serverName,
// whatever the URL's host (which becomes the Host header). h2 enables HTTP/2.
func (g *gateway) client(serverName string, h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", g.https)
		},
		TLSClientConfig:   &tls.Config{ServerName: serverName, RootCAs: g.ca.Pool},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	g.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// plainClient sends plain HTTP to the gateway's port 80 listener, whatever the URL's host.
func (g *gateway) plainClient() *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", g.http)
		},
	}
	g.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request and returns the status and body.
func do(t *testing.T, c *http.Client, method, url string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// mtlsFiles issues identities (for certstore's mTLS) from one throwaway CA.
func mtlsFiles(t *testing.T, ids ...string) map[string]*mtls.Files {
	t.Helper()
	ca := mtlstest.NewCA(t)
	out := map[string]*mtls.Files{}
	for _, id := range ids {
		f := ca.Issue(id)
		out[id] = &f
	}
	return out
}
