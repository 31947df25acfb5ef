// Package fakecertstore is an in-process CertReadService on a real gRPC listener
// (127.0.0.1), for the gateway's unit tests: it follows certstore's contract for Lookup
// (exact name, then the wildcard one label up; NOT_FOUND otherwise) and Watch (RESET
// first when not resuming, replay after a kept revision), counts calls, and can be slowed
// down, made to fail, stopped and restarted. The integration tests use the real certstore.
package fakecertstore

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// Server is the fake certstore.
type Server struct {
	certstorev1.UnimplementedCertReadServiceServer

	t    testing.TB
	addr string

	mu      sync.Mutex
	srv     *grpc.Server
	certs   map[string]stored
	routes  map[string]*certstorev1.Route
	events  []*certstorev1.WatchResponse
	changed chan struct{} // closed and replaced on every event
	delay   time.Duration
	failure codes.Code
	floor   int // revisions below this are no longer kept

	lookups atomic.Int64
	watches atomic.Int64
}

type stored struct {
	leaf    testpki.Leaf
	version int64
}

// Start serves on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:       t,
		certs:   map[string]stored{},
		routes:  map[string]*certstorev1.Route{},
		changed: make(chan struct{}),
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	s.serve(lis)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(lis net.Listener) {
	srv := grpc.NewServer()
	certstorev1.RegisterCertReadServiceServer(srv, s)
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
}

// Addr is the gRPC address.
func (s *Server) Addr() string { return s.addr }

// Client dials the fake.
func (s *Server) Client(t testing.TB) certstorev1.CertReadServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return certstorev1.NewCertReadServiceClient(conn)
}

// Stop stops serving (an outage): open streams end, new calls cannot connect.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart serves again on the same address, with the same data.
func (s *Server) Restart() {
	s.t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Stop
		if lis, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("restart fake certstore on %s: %v", s.addr, err)
	}
	s.serve(lis)
}

// Put stores a certificate under name (a hostname or `*.base`) and announces it.
func (s *Server) Put(name string, leaf testpki.Leaf) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[name] = stored{leaf: leaf, version: s.certs[name].version + 1}
	s.emitLocked(certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT, name)
}

// Delete removes the certificate stored under name and announces it.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.certs, name)
	s.emitLocked(certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_DELETED, name)
}

// SetRoute sets the route of name and announces it.
func (s *Server) SetRoute(r *certstorev1.Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[r.GetHostname()] = r
	s.emitLocked(certstorev1.ChangeKind_CHANGE_KIND_ROUTE_CHANGED, r.GetHostname())
}

// PutSilently stores a certificate without a Watch event, as if the event was lost.
func (s *Server) PutSilently(name string, leaf testpki.Leaf) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[name] = stored{leaf: leaf, version: s.certs[name].version + 1}
}

// ForgetHistory stops keeping the revisions so far: a watcher resuming from one of them
// starts with RESET.
func (s *Server) ForgetHistory() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = len(s.events) + 1
}

// SetDelay makes every Lookup wait d first.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetFailure makes every Lookup fail with code (codes.OK: succeed again).
func (s *Server) SetFailure(code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = code
}

// Lookups is how many Lookup calls arrived.
func (s *Server) Lookups() int64 { return s.lookups.Load() }

// Watches is how many Watch calls arrived.
func (s *Server) Watches() int64 { return s.watches.Load() }

func (s *Server) emitLocked(kind certstorev1.ChangeKind, name string) {
	s.events = append(s.events, &certstorev1.WatchResponse{
		Revision: strconv.Itoa(len(s.events) + 1),
		Kind:     kind,
		Hostname: name,
	})
	close(s.changed)
	s.changed = make(chan struct{})
}

// Lookup follows certstore's contract: the exact name, then the wildcard one label up.
func (s *Server) Lookup(ctx context.Context, req *certstorev1.LookupRequest) (*certstorev1.LookupResponse, error) {
	s.lookups.Add(1)
	s.mu.Lock()
	delay, failure := s.delay, s.failure
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if failure != codes.OK {
		return nil, status.Error(failure, "fake certstore failure")
	}
	name := req.GetHostname()
	s.mu.Lock()
	defer s.mu.Unlock()
	match := certstorev1.MatchKind_MATCH_KIND_EXACT
	certName := name
	c, ok := s.certs[name]
	if !ok {
		if i := strings.IndexByte(name, '.'); i >= 0 {
			certName = "*." + name[i+1:]
			c, ok = s.certs[certName]
			match = certstorev1.MatchKind_MATCH_KIND_WILDCARD
		}
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no certificate for %s", name)
	}
	route, ok := s.routes[name]
	if !ok {
		route = s.routes[certName]
	}
	return &certstorev1.LookupResponse{
		CertificateChain: c.leaf.Chain,
		PrivateKey:       c.leaf.Key,
		NotAfter:         timestamppb.New(c.leaf.NotAfter),
		Version:          c.version,
		Match:            match,
		CertificateName:  certName,
		Route:            route,
	}, nil
}

// Watch follows certstore's contract: RESET first unless resuming from a kept revision,
// then every change in order.
func (s *Server) Watch(req *certstorev1.WatchRequest, stream grpc.ServerStreamingServer[certstorev1.WatchResponse]) error {
	s.watches.Add(1)
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	s.mu.Lock()
	next := len(s.events) // index of the next event to send
	reset := true
	if after, err := strconv.Atoi(req.GetAfterRevision()); err == nil && after >= s.floor && after <= len(s.events) {
		next, reset = after, false
	}
	if reset {
		rev := strconv.Itoa(len(s.events))
		s.mu.Unlock()
		if err := stream.Send(&certstorev1.WatchResponse{Revision: rev, Kind: certstorev1.ChangeKind_CHANGE_KIND_RESET}); err != nil {
			return err
		}
		s.mu.Lock()
	}
	for {
		pending := s.events[next:]
		changed := s.changed
		s.mu.Unlock()
		for _, ev := range pending {
			if err := stream.Send(ev); err != nil {
				return err
			}
			next++
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-changed:
		}
		s.mu.Lock()
	}
}
