package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/controlapi/internal/auth"
)

// domainServer is DomainService.
type domainServer struct {
	controlv1.UnimplementedDomainServiceServer
	s *Service
}

// TokenPrefix starts every ownership TXT value.
const TokenPrefix = "portico-verify="

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// servedNames are the certstore names d's route (and certificate) live under: an
// APEX_AND_WILDCARD domain `example.com` is also served as `*.example.com`, because
// certstore's Lookup serves a subdomain from the wildcard one label up (the notary
// writes both; see docs/wildcards.md).
func servedNames(d domains.Domain) []string {
	if d.Kind == domains.KindApexAndWildcard {
		return []string{d.Hostname, "*." + d.Hostname}
	}
	return []string{d.Hostname}
}

// wildcardRival is the other wildcard-kind claim `*.example.com` and `example.com` with
// include_subdomains would make: both need `_acme-challenge.example.com` (one CNAME) and
// the certstore name `*.example.com`.
func wildcardRival(host string, kind domains.Kind) string {
	if kind == domains.KindWildcard {
		return host[len("*."):]
	}
	return "*." + host
}

// randomLabel is n random bytes as lowercase base32. Delegation labels are 10 bytes:
// 80 bits from crypto/rand, a new one per claim, so a label is unique to one tenant's
// claim of one domain (a collision needs about 2^40 claims) and cannot be guessed from
// the domain or the tenant.
func randomLabel(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return lowerBase32.EncodeToString(b)
}

// newTokenCandidate carries 160 random bits. The store keeps the first candidate per
// (tenant, registered domain), so tenants never share a value and a tenant's names under
// one registered domain share one record.
func newTokenCandidate() string { return TokenPrefix + randomLabel(20) }

// domainNotFound is the one answer for a missing domain and for another tenant's: the
// same code, message and details, so nobody can probe who holds a name.
func domainNotFound(host string) error {
	return errkind.New(errkind.NotFound, "domain %q not found", host)
}

// parseHostname normalizes a hostname field; the error names the pkg/hostname rule.
func (s *Service) parseHostname(field, raw string) (hostname.Name, error) {
	n, err := s.cfg.Hostnames.Parse(raw)
	if err != nil {
		var he *hostname.Error
		if errors.As(err, &he) {
			return n, errkind.Invalid(field, string(he.Rule), "%q %s", raw, he.Detail)
		}
		return n, errkind.Invalid(field, "hostname", "%v", err)
	}
	return n, nil
}

// tenantFor decides which tenant a create or list acts for: a tenant acts for itself
// (tenant_id empty or its own), the admin names one (required for create).
func tenantFor(p auth.Principal, requested string, required bool) (string, error) {
	if !p.Admin {
		if requested != "" && requested != p.TenantID {
			return "", errkind.Invalid("tenant_id", "admin-only", "only the admin key may act for another tenant; leave tenant_id empty")
		}
		return p.TenantID, nil
	}
	if v := checkTenantID("tenant_id", requested, required); v != nil {
		return "", errkind.InvalidFields(*v)
	}
	return requested, nil
}

// ownedDomain authenticates the caller, normalizes the hostname field and loads the
// domain the caller may act on (see loadOwned).
func (s *Service) ownedDomain(ctx context.Context, hostname string) (auth.Principal, domains.Domain, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, domains.Domain{}, err
	}
	name, err := s.parseHostname("hostname", hostname)
	if err != nil {
		return p, domains.Domain{}, err
	}
	d, err := s.loadOwned(ctx, p, name.ASCII)
	return p, d, err
}

// loadOwned returns the domain when the caller may see it, NOT_FOUND otherwise.
func (s *Service) loadOwned(ctx context.Context, p auth.Principal, host string) (domains.Domain, error) {
	d, err := s.store.GetDomain(ctx, host)
	if errors.Is(err, domains.ErrNotFound) {
		return d, domainNotFound(host)
	}
	if err != nil {
		return d, err
	}
	if !p.Admin && d.TenantID != p.TenantID {
		return domains.Domain{}, domainNotFound(host)
	}
	return d, nil
}

// modify applies change to the stored domain in a compare-and-swap loop, re-reading on a
// conflict. change sees the fresh record each time; returning errUnchanged skips the write.
func (s *Service) modify(ctx context.Context, d domains.Domain, change func(d *domains.Domain) error) (domains.Domain, error) {
	host := d.Hostname
	fail := func(err error) (domains.Domain, error) {
		if errors.Is(err, domains.ErrNotFound) {
			return domains.Domain{}, domainNotFound(host)
		}
		return domains.Domain{}, err
	}
	for range maxCASAttempts {
		next := d
		if err := change(&next); errors.Is(err, errUnchanged) {
			return d, nil
		} else if err != nil {
			return d, err
		}
		next.UpdatedAt = s.now()
		updated, err := s.store.UpdateDomain(ctx, next)
		if err == nil {
			return updated, nil
		}
		if !errors.Is(err, domains.ErrConflict) {
			return fail(err)
		}
		if d, err = s.store.GetDomain(ctx, host); err != nil {
			return fail(err)
		}
	}
	return d, errkind.New(errkind.Conflict, "domain %q keeps changing; retry", host)
}

var errUnchanged = errors.New("unchanged")

// dueNow schedules the notary to look at d now (keeping an earlier time).
func (s *Service) dueNow(d *domains.Domain) error {
	now := s.now()
	if !d.NextAttemptAt.IsZero() && !d.NextAttemptAt.After(now) {
		return errUnchanged
	}
	d.NextAttemptAt = now
	return nil
}

func (s *Service) domainProto(d domains.Domain) *controlv1.Domain {
	out := &controlv1.Domain{
		Hostname:             d.Hostname,
		TenantId:             d.TenantID,
		Status:               controlv1.DomainStatus(d.Status),
		Kind:                 controlv1.DomainKind(d.Kind),
		RegisteredDomain:     d.RegisteredDomain,
		DnsRecords:           s.records(d),
		LastError:            d.LastError,
		NextAttemptTime:      timestamp(d.NextAttemptAt),
		CreateTime:           timestamp(d.CreatedAt),
		UpdateTime:           timestamp(d.UpdatedAt),
		VerifyTime:           timestamp(d.VerifiedAt),
		VerificationDeadline: timestamp(d.VerifyDeadline),
		RedirectHttps:        d.RedirectHTTPS,
		Upstream:             d.Upstream,
		CoveredBy:            d.CoveredBy,
	}
	if c := d.Certificate; c.Serial != "" || !c.NotAfter.IsZero() {
		out.Certificate = &controlv1.CertificateInfo{
			Issuer:    c.Issuer,
			Serial:    c.Serial,
			NotBefore: timestamp(c.NotBefore),
			NotAfter:  timestamp(c.NotAfter),
			DnsNames:  c.DNSNames,
		}
	}
	return out
}

func (ds *domainServer) CreateDomain(ctx context.Context, req *controlv1.CreateDomainRequest) (*controlv1.CreateDomainResponse, error) {
	s := ds.s
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	tenantID, err := tenantFor(p, req.GetTenantId(), true)
	if err != nil {
		return nil, err
	}
	name, err := s.parseHostname("hostname", req.GetHostname())
	if err != nil {
		return nil, err
	}
	kind := domains.KindExact
	switch {
	case name.Kind == hostname.Wildcard && req.GetIncludeSubdomains():
		return nil, errkind.Invalid("include_subdomains", "wildcard-hostname", "cannot be combined with a wildcard hostname; give the plain name with include_subdomains, or the wildcard alone")
	case name.Kind == hostname.Wildcard:
		kind = domains.KindWildcard
	case req.GetIncludeSubdomains():
		kind = domains.KindApexAndWildcard
	}
	if req.GetUpstream() != "" {
		if err := s.cfg.Upstreams.Check("upstream", req.GetUpstream()); err != nil {
			return nil, err
		}
	}
	if kind != domains.KindExact && s.cfg.DelegationZone == "" {
		return nil, errkind.New(errkind.FailedPrecondition, "wildcard domains need DNS-01 through a CNAME delegation, and this installation has no delegation zone configured; claim exact hostnames")
	}
	if p.Admin {
		if _, err := s.store.GetTenant(ctx, tenantID); errors.Is(err, domains.ErrNotFound) {
			return nil, tenantNotFound(tenantID)
		} else if err != nil {
			return nil, err
		}
	}
	if err := s.limit(ctx, p, "create", s.cfg.CreateLimit); err != nil {
		return nil, err
	}
	if kind != domains.KindExact {
		rival, err := s.store.GetDomain(ctx, wildcardRival(name.ASCII, kind))
		switch {
		case err == nil && rival.Kind != domains.KindExact:
			return nil, errkind.New(errkind.AlreadyExists, "%q is already claimed with its subdomains: *.<name> and <name> with include_subdomains share one certificate name and one _acme-challenge record", rival.Hostname)
		case err != nil && !errors.Is(err, domains.ErrNotFound):
			return nil, err
		}
	}

	token, err := s.store.VerificationToken(ctx, tenantID, name.Registered, newTokenCandidate())
	if err != nil {
		return nil, err
	}
	now := s.now()
	d := domains.Domain{
		Hostname:          name.ASCII,
		TenantID:          tenantID,
		Kind:              kind,
		RegisteredDomain:  name.Registered,
		Status:            domains.StatusPendingVerification,
		VerificationToken: token,
		RedirectHTTPS:     req.RedirectHttps == nil || req.GetRedirectHttps(),
		Upstream:          req.GetUpstream(),
		NextAttemptAt:     now, // the durable hand-off: due for any notary replica
		VerifyDeadline:    now.Add(s.cfg.VerifyDeadline),
		CreatedAt:         now,
		UpdatedAt:         now,
	}
	if kind != domains.KindExact {
		d.DelegationLabel = randomLabel(10)
	}
	created, err := s.store.CreateDomain(ctx, d)
	if errors.Is(err, domains.ErrAlreadyExists) {
		return nil, errkind.Wrap(errkind.AlreadyExists, err, "hostname %q is already claimed", d.Hostname)
	} else if err != nil {
		return nil, err
	}
	logging.Audit(s.log, "domain.created", logging.Hostname(created.Hostname), logging.TenantID(tenantID), logging.Identity(p.String()))

	// Best effort: the notary may settle the domain at once (a covering wildcard).
	ctx = context.WithoutCancel(ctx)
	nctx, cancel := context.WithTimeout(ctx, s.cfg.NotaryTimeout)
	_, err = s.cfg.Notary.EnqueueDomain(nctx, &notaryv1.EnqueueDomainRequest{Hostname: created.Hostname})
	cancel()
	if err != nil {
		s.handoffs.WithLabelValues("enqueue", "fallback").Inc()
		s.log.Warn("notary did not take the new domain; it stays due for the next notary pass", logging.Hostname(created.Hostname), zap.Error(err))
		return &controlv1.CreateDomainResponse{Domain: s.domainProto(created)}, nil
	}
	s.handoffs.WithLabelValues("enqueue", "ok").Inc()
	if fresh, err := s.store.GetDomain(ctx, created.Hostname); err == nil {
		created = fresh
	}
	return &controlv1.CreateDomainResponse{Domain: s.domainProto(created)}, nil
}

func (ds *domainServer) GetDomain(ctx context.Context, req *controlv1.GetDomainRequest) (*controlv1.GetDomainResponse, error) {
	s := ds.s
	_, d, err := s.ownedDomain(ctx, req.GetHostname())
	if err != nil {
		return nil, err
	}
	return &controlv1.GetDomainResponse{Domain: s.domainProto(d)}, nil
}

func (ds *domainServer) ListDomains(ctx context.Context, req *controlv1.ListDomainsRequest) (*controlv1.ListDomainsResponse, error) {
	s := ds.s
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	tenantID, err := tenantFor(p, req.GetTenantId(), false)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	status := domains.Status(req.GetStatus())
	if req.GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_UNSPECIFIED && (req.GetStatus() < 0 || !status.Valid()) {
		return nil, errkind.Invalid("status", "enum", "%d is not a domain status", req.GetStatus())
	}
	q := pageQuery{Kind: "domains", TenantID: tenantID, Status: int32(req.GetStatus())}
	after, err := q.decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	page, err := s.store.ListDomains(ctx, domains.ListQuery{TenantID: tenantID, Status: status, After: after, Limit: size + 1})
	if err != nil {
		return nil, err
	}
	resp := &controlv1.ListDomainsResponse{}
	if len(page) > size {
		page = page[:size]
		resp.NextPageToken = q.encode(page[size-1].Hostname)
	}
	resp.Domains = make([]*controlv1.Domain, len(page))
	for i, d := range page {
		resp.Domains[i] = s.domainProto(d)
	}
	return resp, nil
}

// served reports whether certstore holds a route for d that gateways use.
func served(d domains.Domain) bool {
	return d.Status == domains.StatusActive || d.Status == domains.StatusRenewing || d.CoveredBy != ""
}

func (ds *domainServer) UpdateDomain(ctx context.Context, req *controlv1.UpdateDomainRequest) (*controlv1.UpdateDomainResponse, error) {
	s := ds.s
	if req.Upstream != nil && req.GetUpstream() != "" {
		if err := s.cfg.Upstreams.Check("upstream", req.GetUpstream()); err != nil {
			return nil, err
		}
	}
	_, d, err := s.ownedDomain(ctx, req.GetHostname())
	if err != nil {
		return nil, err
	}
	d, err = s.modify(ctx, d, func(d *domains.Domain) error {
		if d.Status == domains.StatusDeleting {
			return errkind.New(errkind.FailedPrecondition, "domain %q is being deleted", d.Hostname)
		}
		before := *d
		if req.RedirectHttps != nil {
			d.RedirectHTTPS = req.GetRedirectHttps()
		}
		if req.Upstream != nil {
			d.Upstream = req.GetUpstream()
		}
		if d.RedirectHTTPS == before.RedirectHTTPS && d.Upstream == before.Upstream {
			return errUnchanged
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if served(d) {
		d = s.pushRoute(context.WithoutCancel(ctx), d)
	}
	return &controlv1.UpdateDomainResponse{Domain: s.domainProto(d)}, nil
}

// pushRoute sends d's route to certstore; when certstore cannot be reached it makes d due
// so that the notary re-syncs the route. It returns the record as stored last.
func (s *Service) pushRoute(ctx context.Context, d domains.Domain) domains.Domain {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CertstoreTimeout)
	var err error
	for _, name := range servedNames(d) {
		if _, err = s.cfg.Certstore.SetRoute(cctx, &certstorev1.SetRouteRequest{Route: &certstorev1.Route{
			Hostname:      name,
			TenantId:      d.TenantID,
			Upstream:      d.Upstream,
			RedirectHttps: d.RedirectHTTPS,
		}}); err != nil {
			break
		}
	}
	cancel()
	if err == nil {
		s.handoffs.WithLabelValues("set_route", "ok").Inc()
		return d
	}
	s.handoffs.WithLabelValues("set_route", "fallback").Inc()
	s.log.Warn("certstore did not take the new route; the notary will re-sync it", logging.Hostname(d.Hostname), zap.Error(err))
	updated, err := s.modify(ctx, d, s.dueNow)
	if err != nil {
		s.log.Error("could not schedule the route re-sync", logging.Hostname(d.Hostname), zap.Error(err))
		return d
	}
	return updated
}

func (ds *domainServer) DeleteDomain(ctx context.Context, req *controlv1.DeleteDomainRequest) (*controlv1.DeleteDomainResponse, error) {
	s := ds.s
	p, d, err := s.ownedDomain(ctx, req.GetHostname())
	if err != nil {
		return nil, err
	}
	if _, err := s.retire(context.WithoutCancel(ctx), d, nil); err != nil {
		return nil, err
	}
	logging.Audit(s.log, "domain.deleted", logging.Hostname(d.Hostname), logging.TenantID(d.TenantID), logging.Identity(p.String()))
	return &controlv1.DeleteDomainResponse{}, nil
}

// edgeState remembers, across the domains of one tenant deletion, that certstore could
// not be reached, so that the rest are left DELETING for the notary without waiting for
// a timeout each.
type edgeState struct{ down bool }

// retire moves d to DELETING (durably, first), then removes its route and certificate
// from certstore and deletes the record. If certstore cannot be reached, or the notary
// changes the record meanwhile, the record stays DELETING and the notary finishes the job.
// removed reports whether the record is gone.
func (s *Service) retire(ctx context.Context, d domains.Domain, edge *edgeState) (removed bool, err error) {
	d, err = s.modify(ctx, d, func(d *domains.Domain) error {
		if d.Status == domains.StatusDeleting {
			return s.dueNow(d)
		}
		d.Status = domains.StatusDeleting
		d.NextAttemptAt = s.now()
		return nil
	})
	if errkind.Is(err, errkind.NotFound) {
		return true, nil // deleted meanwhile (by the notary, or a concurrent call)
	}
	if err != nil {
		return false, err
	}
	if edge != nil && edge.down {
		return false, nil
	}
	if !s.removeFromEdge(ctx, d) {
		if edge != nil {
			edge.down = true
		}
		return false, nil
	}
	err = s.store.DeleteDomain(ctx, d.Hostname, d.Version)
	switch {
	case err == nil:
		if d.Kind != domains.KindExact {
			// The subdomains this wildcard served need certificates of their own now.
			if _, err := domains.WakeCovered(ctx, s.store, d.TenantID, d.Hostname, s.now()); err != nil {
				s.log.Warn("could not wake the domains the removed wildcard covered; they move at their next check", logging.Hostname(d.Hostname), zap.Error(err))
			}
		}
		return true, nil
	case errors.Is(err, domains.ErrNotFound):
		return true, nil
	case errors.Is(err, domains.ErrConflict):
		s.log.Info("domain changed while being deleted; the notary finishes the deletion", logging.Hostname(d.Hostname))
		return false, nil
	}
	return false, err
}

// removeFromEdge deletes the routes and, when d owns one (not merely covered by a
// wildcard), the certificate, under every name d is served by. NOT_FOUND counts as done.
// The fencing token is the DELETING record's version, which is above any version a
// notary held a lease at before. A wildcard-kind domain that never got a certificate
// leaves `*.<base>` alone when the other wildcard-kind claim of the same base exists
// (the notary refused the later of the two; the name is the other's).
func (s *Service) removeFromEdge(ctx context.Context, d domains.Domain) bool {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CertstoreTimeout)
	defer cancel()
	ownsCertificate := (d.Certificate.Serial != "" || !d.Certificate.NotAfter.IsZero()) && d.CoveredBy == ""
	names := servedNames(d)
	if d.Kind != domains.KindExact && !ownsCertificate {
		rival, err := s.store.GetDomain(cctx, wildcardRival(d.Hostname, d.Kind))
		switch {
		case err == nil && rival.Kind != domains.KindExact:
			shared := "*." + strings.TrimPrefix(d.Hostname, "*.")
			names = slices.DeleteFunc(names, func(n string) bool { return n == shared })
		case err != nil && !errors.Is(err, domains.ErrNotFound):
			s.log.Warn("could not read a rival claim; the notary finishes the deletion", logging.Hostname(d.Hostname), zap.Error(err))
			return false
		}
	}
	for _, name := range names {
		_, err := s.cfg.Certstore.DeleteRoute(cctx, &certstorev1.DeleteRouteRequest{Hostname: name})
		if err != nil && !errkind.Is(errkind.FromGRPC(err), errkind.NotFound) {
			s.handoffs.WithLabelValues("delete_route", "fallback").Inc()
			s.log.Warn("certstore did not remove the route; the notary finishes the deletion", logging.Hostname(name), zap.Error(err))
			return false
		}
		s.handoffs.WithLabelValues("delete_route", "ok").Inc()
		if !ownsCertificate {
			continue
		}
		_, err = s.cfg.Certstore.DeleteCertificate(cctx, &certstorev1.DeleteCertificateRequest{Hostname: name, FencingToken: d.FencingToken()})
		if err != nil && !errkind.Is(errkind.FromGRPC(err), errkind.NotFound) {
			s.handoffs.WithLabelValues("delete_certificate", "fallback").Inc()
			s.log.Warn("certstore did not remove the certificate; the notary finishes the deletion", logging.Hostname(name), zap.Error(err))
			return false
		}
		s.handoffs.WithLabelValues("delete_certificate", "ok").Inc()
	}
	return true
}

// retireTenantDomains retires every domain of a tenant, page by page (hostname order, so
// records leaving the listing do not shift the cursor). It returns how many it handled.
func (s *Service) retireTenantDomains(ctx context.Context, tenantID string) (int, error) {
	edge := &edgeState{}
	n, after := 0, ""
	for {
		page, err := s.store.ListDomains(ctx, domains.ListQuery{TenantID: tenantID, After: after, Limit: 500})
		if err != nil {
			return n, err
		}
		for _, d := range page {
			if _, err := s.retire(ctx, d, edge); err != nil {
				return n, err
			}
			logging.Audit(s.log, "domain.deleted", logging.Hostname(d.Hostname), logging.TenantID(tenantID), logging.Identity("admin"), zap.String("reason", "tenant deleted"))
			n++
		}
		if len(page) < 500 {
			return n, nil
		}
		after = page[len(page)-1].Hostname
	}
}

func (ds *domainServer) VerifyDomain(ctx context.Context, req *controlv1.VerifyDomainRequest) (*controlv1.VerifyDomainResponse, error) {
	s := ds.s
	p, d, err := s.ownedDomain(ctx, req.GetHostname())
	if err != nil {
		return nil, err
	}
	if d.Status == domains.StatusDeleting {
		return nil, errkind.New(errkind.FailedPrecondition, "domain %q is being deleted", d.Hostname)
	}
	if err := s.limit(ctx, p, "verify", s.cfg.VerifyLimit); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	nctx, cancel := context.WithTimeout(ctx, s.cfg.NotaryTimeout)
	_, err = s.cfg.Notary.VerifyDomain(nctx, &notaryv1.VerifyDomainRequest{Hostname: d.Hostname})
	cancel()
	if err == nil {
		s.handoffs.WithLabelValues("verify", "ok").Inc()
		if fresh, err := s.store.GetDomain(ctx, d.Hostname); err == nil {
			d = fresh
		}
		return &controlv1.VerifyDomainResponse{Domain: s.domainProto(d)}, nil
	}
	s.handoffs.WithLabelValues("verify", "fallback").Inc()
	s.log.Warn("notary did not verify now; the domain is due for the next notary pass", logging.Hostname(d.Hostname), zap.Error(err))
	d, err = s.modify(ctx, d, s.dueNow)
	if err != nil {
		return nil, err
	}
	return &controlv1.VerifyDomainResponse{Domain: s.domainProto(d)}, nil
}
