package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
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

	certstoreConn, err := grpcclient.Dial(cfg.Certstore)
	if err != nil {
		return err
	}
	defer certstoreConn.Close()
	certstoreUp := func(ctx context.Context) error {
		resp, err := healthpb.NewHealthClient(certstoreConn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("certstore: %w", err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("certstore is %v", resp.GetStatus())
		}
		return nil
	}

	reg := httpserver.NewRegistry()
	health, err := grpcserver.New(log, grpcserver.Config{
		HealthListen: cfg.HealthListen,
		Checks:       []grpcserver.Check{{Name: "certstore", Probe: certstoreUp}},
	})
	if err != nil {
		return err
	}
	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, certstoreUp))
	if err != nil {
		return err
	}
	plain, err := httpserver.Listen(cfg.HTTPListen, http.NotFoundHandler())
	if err != nil {
		return err
	}
	secure, err := httpserver.Listen(cfg.HTTPSListen, http.NotFoundHandler())
	if err != nil {
		return err
	}
	secure.HTTP.TLSConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, errors.New("no certificate: SNI routing is not implemented yet")
		},
	}

	log.Info("gateway starting", zap.Stringer("http", plain.Addr()), zap.Stringer("https", secure.Addr()), zap.Stringer("admin", admin.Addr()))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return health.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return plain.Run(ctx) })
	g.Go(func() error { return secure.Run(ctx) })
	return g.Wait()
}
