package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/portico-dev/portico/pkg/domains/redisstore"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/redisconn"
	"github.com/portico-dev/portico/services/notary/internal/acmeclient"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/redischallenges"
	"github.com/portico-dev/portico/services/notary/internal/dnscheck"
	"github.com/portico-dev/portico/services/notary/internal/leases/redislease"
	"github.com/portico-dev/portico/services/notary/internal/server"
	"github.com/portico-dev/portico/services/notary/internal/worker"
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
	acmeclient.RouteLegoLogs(log)

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

	store := redisstore.New(rdb, cfg.Redis.KeyPrefix)
	notaryPrefix := cfg.Redis.KeyPrefix + ":notary"
	challengeStore := redischallenges.New(rdb, notaryPrefix)
	checker, err := dnscheck.New(dnscheck.Config{
		Resolvers: splitList(cfg.DNS.Resolvers), Timeout: cfg.DNS.Timeout,
		EdgeAddrs: cfg.edge.Addresses, EdgeCNAME: cfg.edge.CNAME, CAAIdentities: splitList(cfg.DNS.CAAIdentities),
	})
	if err != nil {
		return err
	}
	acmeHTTP, err := caHTTPClient(cfg.ACME.CAFile)
	if err != nil {
		return err
	}
	ca, err := acmeclient.New(acmeclient.Config{
		DirectoryURL: cfg.ACME.Directory, Email: cfg.ACME.Email,
		EABKeyID: cfg.ACME.EABKeyID, EABHMAC: cfg.ACME.EABHMAC,
		Profile: cfg.ACME.Profile, KeyType: cfg.ACME.KeyType,
		AccountKey: acmeclient.FileKeyStore{Path: cfg.ACME.AccountKeyFile},
		HTTPClient: acmeHTTP,
		HTTP01:     &challenges.Provider{Store: challengeStore, TTL: cfg.ChallengeTTL, Policy: cfg.Hostnames},
	}, log)
	if err != nil {
		return err
	}

	reg := httpserver.NewRegistry()
	w := worker.New(worker.Deps{
		Log: log, Store: store, Leases: redislease.New(rdb, notaryPrefix),
		Certs: certstorev1.NewCertWriteServiceClient(certstoreConn), DNS: checker, CA: ca,
		Metrics: worker.NewMetrics(reg), Budget: worker.NewBudget(rdb, notaryPrefix, cfg.Worker.Limits),
	}, cfg.Worker)

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
	srv.RegisterService(&notaryv1.NotaryService_ServiceDesc, &server.Server{
		Worker: w, Store: store, Policy: cfg.Hostnames, VerifyTimeout: cfg.VerifyTimeout,
	})

	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, redisconn.Ping(rdb)))
	if err != nil {
		return err
	}
	challengeHTTP, err := httpserver.Listen(cfg.HTTPListen, &challenges.Handler{Store: challengeStore, Policy: cfg.Hostnames, Log: log})
	if err != nil {
		return err
	}

	log.Info("notary starting", zap.Stringer("listen", srv.Addr()), zap.Stringer("http", challengeHTTP.Addr()), zap.Stringer("admin", admin.Addr()),
		zap.String("acme_directory", cfg.ACME.Directory))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return challengeHTTP.Run(ctx) })
	g.Go(func() error { return w.Run(ctx) })
	return g.Wait()
}

// caHTTPClient is the HTTP client for the CA's API: the system roots, or the bundle in
// caFile for a private or test CA.
func caHTTPClient(caFile string) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-acme-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("-acme-ca-file %s: no PEM certificates", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	return &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg, TLSHandshakeTimeout: 15 * time.Second, ResponseHeaderTimeout: 30 * time.Second},
	}, nil
}
