package main

// The test harness: the real controlapi (its run function) against real Redis, talking
// real gRPC and HTTP on loopback. The notary and certstore are in-process fakes of their
// gRPC services (fakeNotary, fakeCertstore) where a test looks at what controlapi asks of
// them; an address where nothing listens stands for one that is down.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/redisstore"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
)

const testAdminKey = "admin-0123456789abcdef0123456789abcdef"

// harness is one running controlapi.
type harness struct {
	t        testing.TB
	grpcAddr string
	httpAddr string
	admin    string
	rdb      *redis.Client
	prefix   string
	store    domains.Store
	conn     *grpc.ClientConn
	tenants  controlv1.TenantServiceClient
	domains  controlv1.DomainServiceClient
	http     *http.Client
}

type harnessOptions struct {
	notary    string // address; empty: one where nothing listens
	certstore string
	args      []string
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startControlAPI runs controlapi until the test ends and waits until it is SERVING.
func startControlAPI(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	rdb, prefix := redistest.New(t)
	if o.notary == "" {
		o.notary = freeAddr(t)
	}
	if o.certstore == "" {
		o.certstore = freeAddr(t)
	}
	h := &harness{t: t, grpcAddr: freeAddr(t), httpAddr: freeAddr(t), admin: freeAddr(t), rdb: rdb, prefix: prefix,
		store: redisstore.New(rdb, prefix), http: &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	args := append([]string{
		"-listen", h.grpcAddr, "-http-listen", h.httpAddr, "-admin-listen", h.admin,
		"-redis-addr", redistest.Addr(), "-redis-key-prefix", prefix,
		"-notary-addr", o.notary, "-certstore-addr", o.certstore,
		"-admin-key", testAdminKey,
		"-edge-addresses", "192.0.2.10,2001:db8::10", "-edge-cname", "edge.portico.example.net",
		"-upstream-allow", "10.20.0.0/16,backend.internal:8080",
		"-notary-timeout", "500ms", "-certstore-timeout", "500ms",
		"-log-level", "warn",
	}, o.args...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after shutdown", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("controlapi did not stop within 10s")
		}
	})
	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.conn = conn
	h.tenants = controlv1.NewTenantServiceClient(conn)
	h.domains = controlv1.NewDomainServiceClient(conn)
	waitHealth(t, done, conn, healthpb.HealthCheckResponse_SERVING)
	return h
}

// waitHealth waits for the overall health status, failing early if run returned.
func waitHealth(t testing.TB, done chan error, conn *grpc.ClientConn, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("controlapi exited while starting: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health is %v (%v), want %v", resp.GetStatus(), err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withKey is a context that carries key as gRPC metadata ("" for none).
func withKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// createTenant makes a tenant through the API and returns its key.
func (h *harness) createTenant(id string) string {
	h.t.Helper()
	resp, err := h.tenants.CreateTenant(withKey(context.Background(), testAdminKey), &controlv1.CreateTenantRequest{TenantId: id, DisplayName: "Tenant " + id})
	if err != nil {
		h.t.Fatalf("CreateTenant(%s): %v", id, err)
	}
	return resp.GetApiKey()
}

// createDomain claims hostname for the tenant holding key, through gRPC.
func (h *harness) createDomain(key, hostname string) *controlv1.Domain {
	h.t.Helper()
	resp, err := h.domains.CreateDomain(withKey(context.Background(), key), &controlv1.CreateDomainRequest{Hostname: hostname})
	if err != nil {
		h.t.Fatalf("CreateDomain(%s): %v", hostname, err)
	}
	return resp.GetDomain()
}

// jsonAnswer is an HTTP response with its decoded JSON body.
type jsonAnswer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call sends a JSON request; body may be nil, a string or anything json.Marshal takes.
func (h *harness) call(method, path, key string, body any) jsonAnswer {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, "http://"+h.httpAddr+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := jsonAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			h.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return a
}

// violation returns the first field violation of a JSON error body.
func (a jsonAnswer) violation() (field, rule string) {
	details, _ := a.body["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if vs, ok := m["field_violations"].([]any); ok && len(vs) > 0 {
			v, _ := vs[0].(map[string]any)
			f, _ := v["field"].(string)
			r, _ := v["reason"].(string)
			return f, r
		}
	}
	return "", ""
}

// fakeNotary is an in-process NotaryService. onEnqueue and onVerify, when set, run
// against the store like the real notary would before answering.
type fakeNotary struct {
	notaryv1.UnimplementedNotaryServiceServer
	mu        sync.Mutex
	enqueued  []string
	verified  []string
	onEnqueue func(ctx context.Context, hostname string) error
	onVerify  func(ctx context.Context, hostname string) error
}

func (n *fakeNotary) EnqueueDomain(ctx context.Context, req *notaryv1.EnqueueDomainRequest) (*notaryv1.EnqueueDomainResponse, error) {
	n.mu.Lock()
	n.enqueued = append(n.enqueued, req.GetHostname())
	fn := n.onEnqueue
	n.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, req.GetHostname()); err != nil {
			return nil, err
		}
	}
	return &notaryv1.EnqueueDomainResponse{Progress: &notaryv1.DomainProgress{Hostname: req.GetHostname()}}, nil
}

func (n *fakeNotary) VerifyDomain(ctx context.Context, req *notaryv1.VerifyDomainRequest) (*notaryv1.VerifyDomainResponse, error) {
	n.mu.Lock()
	n.verified = append(n.verified, req.GetHostname())
	fn := n.onVerify
	n.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, req.GetHostname()); err != nil {
			return nil, err
		}
	}
	return &notaryv1.VerifyDomainResponse{Progress: &notaryv1.DomainProgress{Hostname: req.GetHostname()}}, nil
}

// fakeCertstore is an in-process CertWriteService that records the writes it gets.
type fakeCertstore struct {
	certstorev1.UnimplementedCertWriteServiceServer
	mu                 sync.Mutex
	routes             map[string]*certstorev1.Route
	deletedRoutes      []string
	deletedCertificate map[string]int64 // hostname -> fencing token
}

func (c *fakeCertstore) SetRoute(_ context.Context, req *certstorev1.SetRouteRequest) (*certstorev1.SetRouteResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.routes == nil {
		c.routes = map[string]*certstorev1.Route{}
	}
	c.routes[req.GetRoute().GetHostname()] = req.GetRoute()
	return &certstorev1.SetRouteResponse{}, nil
}

func (c *fakeCertstore) DeleteRoute(_ context.Context, req *certstorev1.DeleteRouteRequest) (*certstorev1.DeleteRouteResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.routes, req.GetHostname())
	c.deletedRoutes = append(c.deletedRoutes, req.GetHostname())
	return &certstorev1.DeleteRouteResponse{}, nil
}

func (c *fakeCertstore) DeleteCertificate(_ context.Context, req *certstorev1.DeleteCertificateRequest) (*certstorev1.DeleteCertificateResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deletedCertificate == nil {
		c.deletedCertificate = map[string]int64{}
	}
	c.deletedCertificate[req.GetHostname()] = req.GetFencingToken()
	return &certstorev1.DeleteCertificateResponse{}, nil
}

// serveFake serves one fake gRPC service on a loopback port until the test ends.
func serveFake(t testing.TB, desc *grpc.ServiceDesc, impl any) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(desc, impl)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dueNow reports whether hostname is listed by DueDomains at the current time.
func (h *harness) dueNow(hostname string) bool {
	h.t.Helper()
	due, err := h.store.DueDomains(context.Background(), time.Now().Add(time.Second), 100000)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, d := range due {
		if d == hostname {
			return true
		}
	}
	return false
}

// grpcCode is the status code name of err, "OK" for nil.
func grpcCode(err error) string { return status.Code(err).String() }

var errBoom = errors.New("boom")

var (
	notaryServiceDesc    = notaryv1.NotaryService_ServiceDesc
	certWriteServiceDesc = certstorev1.CertWriteService_ServiceDesc
)

// Locked reads of what the fakes recorded.
func (c *fakeCertstore) route(host string) (*certstorev1.Route, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[host]
	return r, ok
}

func (c *fakeCertstore) routesDeleted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.deletedRoutes...)
}

func (c *fakeCertstore) certificateDeleted(host string) (fencingToken int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fencingToken, ok = c.deletedCertificate[host]
	return fencingToken, ok
}

func (n *fakeNotary) calls() (enqueued, verified []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.enqueued...), append([]string(nil), n.verified...)
}

func (n *fakeNotary) setHooks(onEnqueue, onVerify func(ctx context.Context, hostname string) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onEnqueue, n.onVerify = onEnqueue, onVerify
}
