// Package certsource asks certstore what serves a hostname (CertReadService.Lookup) and
// turns the answer into a ready-to-cache certcache.Entry: chain and key parsed once, the
// key checked against the leaf, the leaf checked to cover the hostname and its notAfter
// kept in the entry.
//
// Errors are errkind errors: NotFound when certstore has no certificate for the name (the
// caller caches that as a negative answer); Unavailable, DeadlineExceeded and the other
// kinds from the gRPC status otherwise; Internal when certstore's answer cannot be used
// (it is logged, and never cached).
package certsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
)

// Client looks hostnames up in certstore.
type Client struct {
	rpc      certstorev1.CertReadServiceClient
	log      *zap.Logger
	found    prometheus.Observer
	notFound prometheus.Observer
	failed   prometheus.Observer
}

// New builds a client over a certstore connection. reg receives
// gateway_certstore_lookup_duration_seconds{result="found|not_found|error"} (nil: none).
func New(rpc certstorev1.CertReadServiceClient, log *zap.Logger, reg prometheus.Registerer) *Client {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_certstore_lookup_duration_seconds",
		Help:    "Time of certstore Lookup calls made on cache misses, by result.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"result"})
	if reg != nil {
		reg.MustRegister(h)
	}
	return &Client{
		rpc:      rpc,
		log:      log,
		found:    h.WithLabelValues("found"),
		notFound: h.WithLabelValues("not_found"),
		failed:   h.WithLabelValues("error"),
	}
}

// Lookup fetches the certificate, key and route serving name (normalized by the caller).
func (c *Client) Lookup(ctx context.Context, name string) (*certcache.Entry, error) {
	start := time.Now()
	resp, err := c.rpc.Lookup(ctx, &certstorev1.LookupRequest{Hostname: name})
	took := time.Since(start).Seconds()
	if err != nil {
		err = errkind.FromGRPC(err)
		if errkind.Is(err, errkind.NotFound) {
			c.notFound.Observe(took)
			return nil, err
		}
		c.failed.Observe(took)
		return nil, fmt.Errorf("certstore lookup of %s: %w", name, err)
	}
	e, err := entryFrom(name, resp)
	if err != nil {
		c.failed.Observe(took)
		c.log.Error("certstore answered with a certificate the gateway cannot serve", logging.Hostname(name),
			zap.String("certificate_name", resp.GetCertificateName()), zap.Int64(logging.KeyVersion, resp.GetVersion()), zap.Error(err))
		return nil, errkind.Wrap(errkind.Internal, err, "unusable certificate for %s", name)
	}
	c.found.Observe(took)
	return e, nil
}

// entryFrom checks and parses a Lookup answer.
func entryFrom(name string, resp *certstorev1.LookupResponse) (*certcache.Entry, error) {
	cert, leaf, err := certcache.ParseCertificate(resp.GetCertificateChain(), resp.GetPrivateKey())
	if err != nil {
		return nil, err
	}
	if err := leaf.VerifyHostname(name); err != nil {
		return nil, fmt.Errorf("leaf does not cover the hostname: %w", err)
	}
	certName := resp.GetCertificateName()
	if certName == "" {
		return nil, errors.New("no certificate_name in the answer")
	}
	route := resp.GetRoute()
	if up := route.GetUpstream(); up != "" {
		if _, _, err := net.SplitHostPort(up); err != nil {
			return nil, fmt.Errorf("route upstream %q is not host:port: %w", up, err)
		}
	}
	return &certcache.Entry{
		Name:     name,
		Cert:     cert,
		CertName: certName,
		Route: certcache.Route{
			TenantID:      route.GetTenantId(),
			Upstream:      route.GetUpstream(),
			RedirectHTTPS: route.GetRedirectHttps(),
		},
		Version: resp.GetVersion(),
		// The leaf is the authority on its own expiry; not_after repeats it.
		NotAfter: leaf.NotAfter,
		Size:     certcache.EstimateSize(cert),
	}, nil
}
