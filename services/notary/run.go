package main

import (
	"context"
	"crypto/tls"
	"net/http"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/redisconn"
)

// allow says which caller identities may use which service (see package grpcserver).
var allow = map[string][]string{
	"/portico.notary.v1.NotaryService/": {"controlapi"},
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := logging.New("notary", cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	var serverTLS *tls.Config
	if cfg.TLS.Enabled() {
		if serverTLS, err = mtls.ServerConfig(cfg.TLS); err != nil {
			return err
		}
	}
	rdb := cfg.Redis.Open()
	defer rdb.Close()
	certstoreConn, err := grpcclient.Dial(cfg.Certstore)
	if err != nil {
		return err
	}
	defer certstoreConn.Close()

	reg := httpserver.NewRegistry()
	srv, err := grpcserver.New(log, grpcserver.Config{
		Listen:       cfg.Listen,
		HealthListen: cfg.HealthListen,
		TLS:          serverTLS,
		Allow:        allow,
		Checks:       []grpcserver.Check{{Name: "redis", Probe: redisconn.Ping(rdb)}},
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	srv.RegisterService(&notaryv1.NotaryService_ServiceDesc, notaryv1.UnimplementedNotaryServiceServer{})

	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, redisconn.Ping(rdb)))
	if err != nil {
		return err
	}
	challenges, err := httpserver.Listen(cfg.HTTPListen, http.NotFoundHandler())
	if err != nil {
		return err
	}

	log.Info("notary starting", zap.Stringer("listen", srv.Addr()), zap.Stringer("http", challenges.Addr()), zap.Stringer("admin", admin.Addr()))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return challenges.Run(ctx) })
	return g.Wait()
}
