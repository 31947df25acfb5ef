package main

import (
	"context"
	"crypto/tls"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/redisconn"
)

// allow says which caller identities may use which service (see package grpcserver).
var allow = map[string][]string{
	"/portico.certstore.v1.CertReadService/":  {"gateway"},
	"/portico.certstore.v1.CertWriteService/": {"notary", "controlapi"},
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := logging.New("certstore", cfg.Log)
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
	srv.RegisterService(&certstorev1.CertReadService_ServiceDesc, certstorev1.UnimplementedCertReadServiceServer{})
	srv.RegisterService(&certstorev1.CertWriteService_ServiceDesc, certstorev1.UnimplementedCertWriteServiceServer{})

	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, redisconn.Ping(rdb)))
	if err != nil {
		return err
	}

	log.Info("certstore starting", zap.Stringer("listen", srv.Addr()), zap.Stringer("admin", admin.Addr()))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	return g.Wait()
}
