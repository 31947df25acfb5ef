// Package grpcserver is the one gRPC server builder every Portico service uses.
//
// A Server comes with:
//   - grpc.health.v1 whose status follows the service's real dependencies (Checks are
//     probed every CheckInterval; any failure means NOT_SERVING), optionally also on a
//     plaintext health-only listener for kubelet's native gRPC probes;
//   - zap request logging, panic recovery, Prometheus request metrics;
//   - errkind errors turned into statuses, and unclassified errors hidden behind
//     INTERNAL (the cause is logged, never sent);
//   - mTLS with a per-method allow-list of caller identities. Every method must be listed
//     (health excepted): an unlisted method is PERMISSION_DENIED, so adding an RPC without
//     deciding who may call it fails closed;
//   - a plaintext mode for local runs, allowed only on loopback, with a warning;
//   - graceful stop when the context passed to Run is cancelled.
package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/errkind"
	plog "github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
)

// LivenessService is the grpc.health.v1 service name that answers SERVING for as long as
// the process runs, whatever its dependencies say (until shutdown). Kubernetes liveness
// probes ask for it, readiness probes for "" (the dependencies): a Redis or certstore
// outage then takes pods out of rotation but never restarts them, so a gateway keeps
// serving its cache while certstore is down.
const LivenessService = "liveness"

// Check probes one dependency; a non-nil error makes the service NOT_SERVING.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Config describes a server.
type Config struct {
	// Listen is the host:port of the main listener. Empty means none: a process with no
	// gRPC API of its own (the gateway) serves only health on HealthListen.
	Listen string
	// TLS is the server's TLS configuration (see package mtls). Nil means plaintext,
	// which is refused unless Listen is a loopback address or AllowPlaintext is set.
	TLS *tls.Config
	// AllowPlaintext permits plaintext on any address, for a server whose TLS is
	// terminated in front of it (a service mesh sidecar). Logged as a warning.
	AllowPlaintext bool
	// TrustDomain is the URI SAN host identities belong to (mtls.DefaultTrustDomain when
	// empty).
	TrustDomain string
	// Allow maps a full method ("/pkg.Service/Method") or a service prefix
	// ("/pkg.Service/") to the client-certificate identities allowed to call it. With TLS
	// and a non-nil Allow, every call is checked. A nil Allow means the service
	// authenticates its callers itself (controlapi's API keys, in Unary and Stream).
	Allow map[string][]string
	// Unary and Stream are the service's own interceptors, run after the builder's
	// (metrics, logging, errors, identity) and before panic recovery.
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// HealthListen, when set, is a plaintext listener serving only grpc.health.v1.
	HealthListen string
	// Checks are the dependencies health reflects.
	Checks []Check
	// CheckInterval is how often Checks run (default 5 s).
	CheckInterval time.Duration
	// ShutdownGrace is how long in-flight calls may finish after Run's context ends
	// (default 3 s; the process must be gone within 5 s of SIGTERM).
	ShutdownGrace time.Duration
	// Registerer receives the request metrics; nil means none.
	Registerer prometheus.Registerer
	// MaxRecvMsgSize caps the size of a received message in bytes (larger ones are
	// refused with RESOURCE_EXHAUSTED before decoding); 0 keeps gRPC's default of 4 MiB.
	MaxRecvMsgSize int
}

// Server is a gRPC server with the Portico defaults. Register services with
// RegisterService before Run.
type Server struct {
	log       *zap.Logger
	cfg       Config
	grpc      *grpc.Server
	healthSrv *grpc.Server
	health    *health.Server
	lis       net.Listener
	healthLis net.Listener
	metrics   *grpcprom.ServerMetrics
}

// New builds a server and binds its listeners, so that Addr is known before Run.
func New(log *zap.Logger, cfg Config) (*Server, error) {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 5 * time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 3 * time.Second
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = mtls.DefaultTrustDomain
	}
	if cfg.Listen == "" && cfg.HealthListen == "" {
		return nil, errors.New("gRPC server needs a listen or a health-listen address")
	}
	if cfg.TLS == nil && cfg.Listen != "" {
		if !cfg.AllowPlaintext && !config.IsLoopback(cfg.Listen) {
			return nil, fmt.Errorf("plaintext gRPC on %s refused: without TLS the server may only listen on loopback", cfg.Listen)
		}
		log.Warn("gRPC server without TLS: callers are not identified by certificate; for local runs, or behind a TLS-terminating proxy", zap.String("listen", cfg.Listen))
	}

	s := &Server{log: log, cfg: cfg, health: health.NewServer()}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)

	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if cfg.Registerer != nil {
		s.metrics = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}),
		))
		if err := cfg.Registerer.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("register gRPC metrics: %w", err)
		}
		unary = append(unary, s.metrics.UnaryServerInterceptor())
		stream = append(stream, s.metrics.StreamServerInterceptor())
	}
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	unary = append(unary, logging.UnaryServerInterceptor(zapAdapter(log), logOpts...), s.unaryErrors)
	stream = append(stream, logging.StreamServerInterceptor(zapAdapter(log), logOpts...), s.streamErrors)
	if cfg.TLS != nil && cfg.Allow != nil {
		unary = append(unary, s.unaryAuthorize)
		stream = append(stream, s.streamAuthorize)
	}
	unary = append(unary, cfg.Unary...)
	stream = append(stream, cfg.Stream...)
	recoverOpt := recovery.WithRecoveryHandlerContext(s.recovered)
	unary = append(unary, recovery.UnaryServerInterceptor(recoverOpt))
	stream = append(stream, recovery.StreamServerInterceptor(recoverOpt))

	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	if cfg.MaxRecvMsgSize > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize))
	}
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)

	var err error
	if cfg.Listen != "" {
		if s.lis, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen for gRPC on %s: %w", cfg.Listen, err)
		}
	}
	if cfg.HealthListen != "" {
		s.healthSrv = grpc.NewServer()
		healthpb.RegisterHealthServer(s.healthSrv, s.health)
		if s.healthLis, err = net.Listen("tcp", cfg.HealthListen); err != nil {
			if s.lis != nil {
				s.lis.Close()
			}
			return nil, fmt.Errorf("listen for gRPC health on %s: %w", cfg.HealthListen, err)
		}
	}
	return s, nil
}

// RegisterService registers a service implementation; call before Run.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
}

// Addr is the bound address of the main listener, or nil.
func (s *Server) Addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// HealthAddr is the bound address of the health-only listener, or nil.
func (s *Server) HealthAddr() net.Addr {
	if s.healthLis == nil {
		return nil
	}
	return s.healthLis.Addr()
}

// Run serves until ctx is cancelled, then reports NOT_SERVING, lets in-flight calls finish
// for up to ShutdownGrace, and stops. It returns nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	if s.metrics != nil {
		s.metrics.InitializeMetrics(s.grpc)
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.lis != nil {
		g.Go(func() error { return serve(s.grpc, s.lis) })
	}
	if s.healthSrv != nil {
		g.Go(func() error { return serve(s.healthSrv, s.healthLis) })
	}
	g.Go(func() error {
		s.watchHealth(gctx)
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.health.Shutdown()
		s.stop(s.grpc)
		if s.healthSrv != nil {
			s.healthSrv.Stop()
		}
		return nil
	})
	err := g.Wait()
	if ctx.Err() != nil && err == nil {
		s.log.Info("gRPC server stopped")
	}
	return err
}

func serve(srv *grpc.Server, lis net.Listener) error {
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

func (s *Server) stop(srv *grpc.Server) {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownGrace):
		s.log.Warn("gRPC calls still running after the shutdown grace period; stopping them", zap.Duration("grace", s.cfg.ShutdownGrace))
		srv.Stop()
	}
}

// watchHealth probes the checks now and every CheckInterval until ctx ends.
func (s *Server) watchHealth(ctx context.Context) {
	services := make([]string, 0, len(s.grpc.GetServiceInfo()))
	for name := range s.grpc.GetServiceInfo() {
		services = append(services, name)
	}
	var last healthpb.HealthCheckResponse_ServingStatus = -1
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		status := healthpb.HealthCheckResponse_SERVING
		for _, c := range s.cfg.Checks {
			pctx, cancel := context.WithTimeout(ctx, min(s.cfg.CheckInterval, 2*time.Second))
			err := c.Probe(pctx)
			cancel()
			if err != nil {
				status = healthpb.HealthCheckResponse_NOT_SERVING
				if ctx.Err() == nil {
					s.log.Warn("dependency check failed", zap.String("check", c.Name), zap.Error(err))
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if status != last {
			s.log.Info("health", zap.Stringer("status", status))
			last = status
		}
		s.health.SetServingStatus("", status)
		for _, name := range services {
			s.health.SetServingStatus(name, status)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// authorize checks the caller's identity against the method's allow-list.
func (s *Server) authorize(ctx context.Context, method string) error {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return nil
	}
	id, ok := mtls.PeerIdentity(ctx, s.cfg.TrustDomain)
	if !ok {
		return errkind.New(errkind.Unauthenticated, "no client certificate identity in trust domain %q", s.cfg.TrustDomain)
	}
	allowed, listed := s.cfg.Allow[method]
	if !listed {
		if i := strings.LastIndexByte(method, '/'); i > 0 {
			allowed, listed = s.cfg.Allow[method[:i+1]]
		}
	}
	if !listed || !slices.Contains(allowed, id) {
		s.log.Warn("call refused", plog.Identity(id), zap.String("grpc.method", method))
		return errkind.New(errkind.PermissionDenied, "identity %q may not call %s", id, method)
	}
	return nil
}

func (s *Server) unaryAuthorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) streamAuthorize(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// publicError keeps errkind errors (except Internal) and context errors, and replaces
// everything else with a bare INTERNAL after logging the cause.
func (s *Server) publicError(method string, err error) error {
	if err == nil {
		return nil
	}
	var e *errkind.Error
	switch kind := errkind.KindOf(err); {
	case errors.As(err, &e) && kind != errkind.Internal:
		return err
	case errors.Is(err, context.Canceled):
		return errkind.Wrap(errkind.Canceled, err, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return errkind.Wrap(errkind.DeadlineExceeded, err, "deadline exceeded")
	case status.Code(err) == codes.Unimplemented:
		return err // from the generated Unimplemented*Server: says exactly what is missing
	}
	s.log.Error("internal error", zap.String("grpc.method", method), zap.Error(err))
	return &errkind.Error{Kind: errkind.Internal, Cause: err}
}

func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, s.publicError(info.FullMethod, err)
}

func (s *Server) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return s.publicError(info.FullMethod, handler(srv, ss))
}

func (s *Server) recovered(ctx context.Context, p any) error {
	s.log.Error("panic in gRPC handler", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
	return &errkind.Error{Kind: errkind.Internal, Cause: fmt.Errorf("panic: %v", p)}
}

// zapAdapter lets the middleware's logging interceptor write through zap.
func zapAdapter(l *zap.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		zf := make([]zap.Field, 0, len(fields)/2)
		for i := 0; i+1 < len(fields); i += 2 {
			key, _ := fields[i].(string)
			zf = append(zf, zap.Any(key, fields[i+1]))
		}
		switch lvl {
		case logging.LevelDebug:
			l.Debug(msg, zf...)
		case logging.LevelInfo:
			l.Debug(msg, zf...) // a finished call is debug noise; errors below are not
		case logging.LevelWarn:
			l.Warn(msg, zf...)
		default:
			l.Error(msg, zf...)
		}
	})
}
