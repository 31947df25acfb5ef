package main

import (
	"context"
	"net"
	"os"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-dev/portico/pkg/dynamo"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/services/controlapi/internal/api"
	"github.com/portico-dev/portico/services/controlapi/internal/auth"
	"github.com/portico-dev/portico/services/controlapi/internal/jsonapi"
)

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "dynamodb" {
		return dynamo.Command(ctx, "controlapi", args[1:], os.Stdout)
	}
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := logging.New("controlapi", cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	st, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.close()
	store := st.domains

	notaryConn, err := grpcclient.Dial(cfg.Notary)
	if err != nil {
		return err
	}
	defer notaryConn.Close()
	certstoreConn, err := grpcclient.Dial(cfg.Certstore)
	if err != nil {
		return err
	}
	defer certstoreConn.Close()

	reg := httpserver.NewRegistry()
	svc, err := api.New(api.Config{
		Log:              log,
		Store:            store,
		Notary:           notaryv1.NewNotaryServiceClient(notaryConn),
		Certstore:        certstorev1.NewCertWriteServiceClient(certstoreConn),
		Limiter:          st.limiter,
		CreateLimit:      cfg.createLimit,
		VerifyLimit:      cfg.verifyLimit,
		NotaryTimeout:    cfg.NotaryTimeout,
		CertstoreTimeout: cfg.CertstoreTimeout,
		Hostnames:        cfg.Hostnames,
		Upstreams:        cfg.upstreams,
		Edge:             cfg.edge,
		DelegationZone:   cfg.DelegationZone,
		VerifyDeadline:   cfg.VerifyDeadline,
		Registerer:       reg,
	})
	if err != nil {
		return err
	}
	authn := auth.New(log, cfg.adminKey, store, map[string]auth.Access{
		"/" + controlv1.TenantService_ServiceDesc.ServiceName + "/": auth.AdminOnly,
		"/" + controlv1.DomainService_ServiceDesc.ServiceName + "/": auth.AdminOrTenant,
		"/" + healthpb.Health_ServiceDesc.ServiceName + "/":         auth.Public,
	})
	if !authn.HasAdminKey() {
		log.Warn("no admin key configured (-admin-key-file or PORTICO_ADMIN_KEY): the tenant API refuses every call")
	}

	grpcCfg := grpcserver.Config{
		Listen:         cfg.Listen,
		HealthListen:   cfg.HealthListen,
		AllowPlaintext: cfg.BehindTLSProxy,
		Checks:         []grpcserver.Check{st.check},
		Registerer:     reg,
		Unary:          []grpc.UnaryServerInterceptor{authn.Interceptor},
		Stream:         []grpc.StreamServerInterceptor{authn.StreamInterceptor},
		MaxRecvMsgSize: cfg.MaxRequestBytes,
	}
	selfCreds := insecure.NewCredentials()
	var certs *mtls.KeyPair
	if cfg.TLSCert != "" {
		if certs, err = mtls.LoadKeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
		grpcCfg.TLS = publicTLS(certs)
		selfCreds = credentials.NewTLS(selfTLS(certs))
	}
	srv, err := grpcserver.New(log, grpcCfg)
	if err != nil {
		return err
	}
	srv.RegisterService(&controlv1.TenantService_ServiceDesc, svc.Tenants())
	srv.RegisterService(&controlv1.DomainService_ServiceDesc, svc.Domains())

	// The JSON API calls the gRPC API over loopback, so both pass the same interceptors.
	self, err := grpc.NewClient(loopback(srv.Addr()), grpc.WithTransportCredentials(selfCreds))
	if err != nil {
		return err
	}
	defer self.Close()
	handler, err := jsonapi.New(ctx, jsonapi.Config{MaxBodyBytes: int64(cfg.MaxRequestBytes), CORSOrigins: cfg.corsOrigins}, self)
	if err != nil {
		return err
	}
	apiHTTP, err := httpserver.Listen(cfg.HTTPListen, handler)
	if err != nil {
		return err
	}
	if certs != nil {
		apiHTTP.HTTP.TLSConfig = publicTLS(certs)
	}
	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, st.check.Probe))
	if err != nil {
		return err
	}

	log.Info("controlapi starting", zap.Stringer("listen", srv.Addr()), zap.Stringer("http", apiHTTP.Addr()),
		zap.Stringer("admin", admin.Addr()), zap.Bool("tls", certs != nil))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return apiHTTP.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	return g.Wait()
}

// loopback is the address to reach a listener from this process: an unspecified host
// (0.0.0.0, ::) becomes the loopback address of its family.
func loopback(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	ip := net.IPv4(127, 0, 0, 1)
	if tcp.IP.To4() == nil {
		ip = net.IPv6loopback
	}
	return (&net.TCPAddr{IP: ip, Port: tcp.Port}).String()
}
