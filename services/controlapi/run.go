package main

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portico-dev/portico/pkg/apidocs"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/redisconn"
)

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := logging.New("controlapi", cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	rdb := cfg.Redis.Open()
	defer rdb.Close()

	reg := httpserver.NewRegistry()
	srv, err := grpcserver.New(log, grpcserver.Config{
		Listen:       cfg.Listen,
		HealthListen: cfg.HealthListen,
		Checks:       []grpcserver.Check{{Name: "redis", Probe: redisconn.Ping(rdb)}},
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	srv.RegisterService(&controlv1.TenantService_ServiceDesc, controlv1.UnimplementedTenantServiceServer{})
	srv.RegisterService(&controlv1.DomainService_ServiceDesc, controlv1.UnimplementedDomainServiceServer{})

	// The JSON API calls the gRPC API over loopback, so both pass the same interceptors.
	self, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer self.Close()
	gw := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{},
	}))
	if err := controlv1.RegisterTenantServiceHandler(ctx, gw, self); err != nil {
		return err
	}
	if err := controlv1.RegisterDomainServiceHandler(ctx, gw, self); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(apidocs.ControlOpenAPI) //nolint:errcheck // the client went away
	})
	api, err := httpserver.Listen(cfg.HTTPListen, mux)
	if err != nil {
		return err
	}
	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, redisconn.Ping(rdb)))
	if err != nil {
		return err
	}

	log.Info("controlapi starting", zap.Stringer("listen", srv.Addr()), zap.Stringer("http", api.Addr()), zap.Stringer("admin", admin.Addr()))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return api.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	return g.Wait()
}
