// Package api implements controlapi's TenantService and DomainService on a domains.Store.
//
// The flows (docs/controlapi.md has the full story):
//   - Create stores the domain PENDING_VERIFICATION with NextAttemptAt = now: the store's
//     due index is the durable hand-off to the notary. The NotaryService.EnqueueDomain
//     call after it only makes things faster, so it is best effort with a short timeout.
//   - Verify-now asks the notary; when the notary cannot be reached it sets
//     NextAttemptAt = now instead, so the next notary replica to look picks it up.
//   - Update persists the settings, then pushes the route to certstore when the domain is
//     served; when certstore cannot be reached it schedules the notary to re-sync it.
//   - Delete persists DELETING first, then removes the route and certificate from
//     certstore and the record; when certstore cannot be reached the record stays
//     DELETING and the notary finishes the job.
//
// Every write is a compare-and-swap on the record's version, retried on conflict (the
// notary writes the same records). The caller's Principal comes from package auth; a
// tenant acts only on its own domains, and a foreign domain is NOT_FOUND exactly like a
// missing one.
package api

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/edge"
	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/services/controlapi/internal/auth"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
	"github.com/portico-dev/portico/services/controlapi/internal/upstream"
)

// Config is everything the service needs.
type Config struct {
	Log       *zap.Logger
	Store     domains.Store
	Notary    notaryv1.NotaryServiceClient
	Certstore certstorev1.CertWriteServiceClient
	Limiter   ratelimit.Limiter
	// CreateLimit and VerifyLimit are per tenant; the admin key is not limited.
	CreateLimit ratelimit.Limit
	VerifyLimit ratelimit.Limit
	// NotaryTimeout and CertstoreTimeout bound each best-effort call.
	NotaryTimeout    time.Duration
	CertstoreTimeout time.Duration
	// Hostnames is the hostname policy (its AllowWildcard is set here; ExtraTLDs come
	// from configuration).
	Hostnames hostname.Policy
	Upstreams upstream.Policy
	Edge      edge.Edge
	// DelegationZone is the zone `_acme-challenge` CNAMEs of wildcard domains point into.
	// Empty: wildcard kinds are refused (FAILED_PRECONDITION).
	DelegationZone string
	// VerifyDeadline is how long ownership verification is retried after creation.
	VerifyDeadline time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Registerer receives the service's metrics; nil means none.
	Registerer prometheus.Registerer
}

// Service holds the shared state of both gRPC services.
type Service struct {
	cfg      Config
	log      *zap.Logger
	store    domains.Store
	now      func() time.Time
	handoffs *prometheus.CounterVec
	limited  *prometheus.CounterVec
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NotaryTimeout <= 0 {
		cfg.NotaryTimeout = 2 * time.Second
	}
	if cfg.CertstoreTimeout <= 0 {
		cfg.CertstoreTimeout = 2 * time.Second
	}
	if cfg.VerifyDeadline <= 0 {
		cfg.VerifyDeadline = 7 * 24 * time.Hour
	}
	cfg.Hostnames.AllowWildcard = true
	s := &Service{
		cfg:   cfg,
		log:   cfg.Log,
		store: cfg.Store,
		now:   cfg.Now,
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_controlapi_handoffs_total",
			Help: "Calls to the notary and certstore after a change, by call and result (ok, or fallback: left to the notary through the store).",
		}, []string{"call", "result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_controlapi_rate_limited_total",
			Help: "Requests refused by a per-tenant rate limit, by action.",
		}, []string{"action"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.handoffs, s.limited} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Tenants is the TenantService implementation.
func (s *Service) Tenants() controlv1.TenantServiceServer { return &tenantServer{s: s} }

// Domains is the DomainService implementation.
func (s *Service) Domains() controlv1.DomainServiceServer { return &domainServer{s: s} }

// principal returns the authenticated caller; its absence is a wiring bug, refused.
func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Principal{}, errkind.New(errkind.Unauthenticated, "unauthenticated call")
	}
	return p, nil
}

// limit applies a per-tenant rate limit. The admin is not limited.
func (s *Service) limit(ctx context.Context, p auth.Principal, action string, lim ratelimit.Limit) error {
	if p.Admin || lim.Unlimited() {
		return nil
	}
	d, err := s.cfg.Limiter.Allow(ctx, action+":"+p.TenantID, lim)
	if err != nil {
		return errkind.Wrap(errkind.Unavailable, err, "cannot check the rate limit now; retry")
	}
	if !d.Allowed {
		s.limited.WithLabelValues(action).Inc()
		return errkind.Exhausted(d.RetryAfter, "too many %s requests for this tenant (limit %s); retry in %s", action, lim, d.RetryAfter.Round(time.Second))
	}
	return nil
}

// maxCASAttempts bounds read-modify-write loops. Conflicts come from the notary working
// on the same record; a handful of retries always suffices unless something is wrong.
const maxCASAttempts = 8
