package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/dynamo"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/services/notary/internal/acmeclient"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/dnscheck"
	"github.com/portico-dev/portico/services/notary/internal/dnsproviders"
	"github.com/portico-dev/portico/services/notary/internal/server"
	"github.com/portico-dev/portico/services/notary/internal/worker"
)

// allow says which caller identities may use which service (see package grpcserver).
var allow = map[string][]string{
	"/portico.notary.v1.NotaryService/": {"controlapi"},
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "dynamodb" {
		return dynamo.Command(ctx, "notary", args[1:], os.Stdout)
	}
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
	st, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.close()
	certstoreConn, err := grpcclient.Dial(cfg.Certstore)
	if err != nil {
		return err
	}
	defer certstoreConn.Close()

	store := st.domains
	challengeStore := st.challenges
	checker, err := dnscheck.New(dnscheck.Config{
		Resolvers: config.List(cfg.DNS.Resolvers), Timeout: cfg.DNS.Timeout,
		EdgeAddrs: cfg.edge.Addresses, EdgeCNAME: cfg.edge.CNAME, CAAIdentities: config.List(cfg.DNS.CAAIdentities),
		AskResolversOnly: cfg.DNS.ResolversOnly, AuthoritativePort: cfg.DNS.AuthoritativePort,
	})
	if err != nil {
		return err
	}
	dns01Provider, dns01Options, dnsListener, err := delegationWriter(cfg, log, store, st.delegation)
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
		DNS01:      dns01Provider, DNS01Options: dns01Options,
	}, log)
	if err != nil {
		return err
	}

	reg := httpserver.NewRegistry()
	w := worker.New(worker.Deps{
		Log: log, Store: store, Leases: st.leases,
		Certs: certstorev1.NewCertWriteServiceClient(certstoreConn), DNS: checker, CA: ca,
		Metrics: worker.NewMetrics(reg), Budget: st.budget,
	}, cfg.Worker)

	srv, err := grpcserver.New(log, grpcserver.Config{
		Listen:       cfg.Listen,
		HealthListen: cfg.HealthListen,
		TLS:          serverTLS,
		Allow:        allow,
		Checks:       []grpcserver.Check{st.check},
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	srv.RegisterService(&notaryv1.NotaryService_ServiceDesc, &server.Server{
		Worker: w, Store: store, Policy: cfg.Hostnames, VerifyTimeout: cfg.VerifyTimeout,
	})

	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, st.check.Probe))
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
	if dnsListener != nil {
		log.Info("delegation DNS server listening", zap.Stringer("listen", dnsListener.Addr()), zap.String("zone", cfg.Delegation.Zone))
		g.Go(func() error { return dnsListener.Run(ctx) })
	}
	return g.Wait()
}

// delegationWriter builds what answers DNS-01 challenges in the delegation zone, as
// -delegation-writer says: the built-in authoritative server (its listener bound here,
// so that a taken port stops the start) writing into the shared store, or a lego DNS
// provider. Without -delegation-zone there is none, and wildcard orders are refused.
func delegationWriter(cfg Config, log *zap.Logger, domainStore domains.DomainStore, answers delegation.Store) (challenge.Provider, []dns01.ChallengeOption, *delegation.Listener, error) {
	dz := cfg.Delegation
	if dz.Zone == "" {
		return nil, nil, nil, nil
	}
	// lego follows `_acme-challenge` CNAMEs (and providers check propagation) through
	// the notary's resolvers, not the system's.
	acmeclient.UseDNSResolvers(config.List(cfg.DNS.Resolvers), cfg.DNS.Timeout)
	if dz.Writer != BuiltinWriter {
		p, err := dnsproviders.New(dz.Writer)
		return p, nil, nil, err
	}
	srv, err := delegation.NewServer(delegation.ServerConfig{Zone: dz.Zone, Nameservers: config.List(dz.Nameservers), TTL: dz.TTL}, answers, log)
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := srv.Listen(dz.DNSListen)
	if err != nil {
		return nil, nil, nil, err
	}
	p := &delegation.Provider{Store: answers, Domains: domainStore, Zone: dz.Zone, TTL: cfg.ChallengeTTL}
	return p, []dns01.ChallengeOption{p.ServedCheck(l.Addr().String())}, l, nil
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
