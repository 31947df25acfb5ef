package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/certsource"
	"github.com/portico-dev/portico/services/gateway/internal/handshake"
	"github.com/portico-dev/portico/services/gateway/internal/proxy"
	"github.com/portico-dev/portico/services/gateway/internal/proxyprotocol"
	"github.com/portico-dev/portico/services/gateway/internal/watch"
)

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := logging.New("gateway", cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	conn, err := grpcclient.Dial(cfg.Certstore)
	if err != nil {
		return err
	}
	defer conn.Close()
	certstore := certstorev1.NewCertReadServiceClient(conn)

	reg := httpserver.NewRegistry()
	cache := certcache.New(certcache.Config{
		MaxEntries:  cfg.CacheMaxEntries,
		MaxBytes:    cfg.CacheMaxBytes,
		MaxNegative: cfg.CacheMaxNegative,
		PositiveTTL: cfg.CacheTTL,
		NegativeTTL: cfg.CacheNegativeTTL,
		Metrics:     certcache.NewMetrics(reg),
	})
	selector := handshake.New(cache, certsource.New(certstore, log, reg), handshake.Config{
		Policy:        cfg.Hostnames,
		LookupTimeout: cfg.LookupTimeout,
		MaxLookups:    cfg.MaxLookups,
	}, log, reg)
	defer selector.Close()
	watcher := watch.New(certstore, cache, watch.Config{}, log, reg)
	proxies := proxy.New(proxy.Config{
		DefaultUpstream:       cfg.Upstream,
		NotaryHTTP:            cfg.NotaryHTTP,
		TrustedProxies:        cfg.TrustedProxies,
		RedirectHTTPSPort:     cfg.RedirectHTTPSPort,
		Policy:                cfg.Hostnames,
		DialTimeout:           cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout: cfg.UpstreamResponseTimeout,
		IdleConnTimeout:       cfg.UpstreamIdleTimeout,
		MaxIdleConns:          cfg.UpstreamMaxIdleConns,
	}, selector, log, reg)
	defer proxies.Close()
	ready := readiness{watcher: watcher, cache: cache}

	health, err := grpcserver.New(log, grpcserver.Config{
		HealthListen:  cfg.HealthListen,
		Checks:        []grpcserver.Check{{Name: "certstore watch or warm cache", Probe: ready.wait}},
		CheckInterval: time.Second,
	})
	if err != nil {
		return err
	}
	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, ready.now))
	if err != nil {
		return err
	}
	plain, plainLis, err := listen(cfg, cfg.HTTPListen, proxies.HTTP(), log)
	if err != nil {
		return err
	}
	secureLis, err := net.Listen("tcp", cfg.HTTPSListen)
	if err != nil {
		plainLis.Close()
		return err
	}
	secureLis = proxyprotocol.Wrap(secureLis, cfg.ProxyProtocolCIDRs, cfg.ReadHeaderTimeout)
	secure := proxies.NewHTTPSServer(handshake.ServerConfig(selector, cfg.SessionTickets), proxy.ServerConfig{
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    int(cfg.MaxHeaderBytes),
		FastPath:          cfg.FastPath,
		ErrorLog:          plain.ErrorLog,
	})

	log.Info("gateway starting", zap.Stringer("http", plainLis.Addr()), zap.Stringer("https", secureLis.Addr()),
		zap.Stringer("admin", admin.Addr()), zap.String("certstore", cfg.Certstore.Addr), zap.String("upstream", cfg.Upstream))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return watcher.Run(ctx) })
	g.Go(func() error { return health.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return httpserver.Run(ctx, plain, plainLis, httpserver.DefaultGrace) })
	g.Go(func() error { return secure.Run(ctx, secureLis, httpserver.DefaultGrace) })
	return g.Wait()
}

// listen binds a client-facing listener (with PROXY protocol from the configured load
// balancers) and builds its server: header, handshake and idle timeouts, a header size
// limit (431 beyond it), and connection errors logged at debug level only, since every
// refused handshake would otherwise log a line.
func listen(cfg Config, addr string, h http.Handler, log *zap.Logger) (*http.Server, net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    int(cfg.MaxHeaderBytes),
	}
	if srv.ErrorLog, err = zap.NewStdLogAt(log.Named("http"), zap.DebugLevel); err != nil {
		lis.Close()
		return nil, nil, err
	}
	return srv, proxyprotocol.Wrap(lis, cfg.ProxyProtocolCIDRs, cfg.ReadHeaderTimeout), nil
}

// readiness: the gateway can serve once its Watch stream to certstore is up (it can then
// fetch and keep entries right), or while it holds cached certificates (it serves them
// even with certstore down).
type readiness struct {
	watcher *watch.Watcher
	cache   *certcache.Cache
}

var errNotReady = errors.New("no Watch stream to certstore and no certificate cached")

func (r readiness) now(context.Context) error {
	if ok, _ := r.watcher.Connected(); ok || r.cache.Len() > 0 {
		return nil
	}
	return errNotReady
}

// wait is the health probe: it returns as soon as the gateway is ready, or errNotReady
// when ctx ends first, so health turns SERVING the moment the stream connects.
func (r readiness) wait(ctx context.Context) error {
	for {
		ok, changed := r.watcher.Connected()
		if ok || r.cache.Len() > 0 {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond): // the cache may warm without a stream
		case <-ctx.Done():
			return errNotReady
		}
	}
}
