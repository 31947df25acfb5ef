// Package worker drives domains through the lifecycle: it finds due work (the domain
// store's due index, certstore's renewal index, and nudges from the API), takes each
// domain's lease, re-reads the record, and then loops: decide with lifecycle.Next,
// persist the decision (compare-and-swap) before its side effect, perform the effect
// (DNS, ACME, certstore), feed the outcome back. A process killed at any line leaves a
// record whose NextAttemptAt brings it back to another replica, which redoes the step.
package worker

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/notary/internal/acmeclient"
	"github.com/portico-dev/portico/services/notary/internal/budget"
	"github.com/portico-dev/portico/services/notary/internal/delegation"
	"github.com/portico-dev/portico/services/notary/internal/dnscheck"
	"github.com/portico-dev/portico/services/notary/internal/leases"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// DNS is what the worker asks DNS (dnscheck.Checker).
type DNS interface {
	Ownership(ctx context.Context, registered, token string) dnscheck.Result
	Preflight(ctx context.Context, host string, wildcard bool) dnscheck.Result
	PointsAtEdge(ctx context.Context, host string) dnscheck.Result
	PreflightWildcard(ctx context.Context, w dnscheck.Wildcard) dnscheck.Result
	ReverifyWildcard(ctx context.Context, w dnscheck.Wildcard) dnscheck.Result
}

// CA is what the worker asks the ACME CA (acmeclient.Client).
type CA interface {
	Obtain(ctx context.Context, names []string, replaces *x509.Certificate) (acmeclient.Certificate, error)
	RenewalInfo(ctx context.Context, leaf *x509.Certificate) (lifecycle.Window, time.Duration, error)
}

// Config tunes the worker. Zero fields take the defaults noted.
type Config struct {
	Policy lifecycle.Policy
	// LeaseTTL is how long a domain's lease lasts without renewal (default 30 s); a
	// killed holder delays the domain by at most this much.
	LeaseTTL time.Duration
	// PollInterval is how often the due index is read (default 5 s).
	PollInterval time.Duration
	// RenewalScanInterval is how often certstore's renewal index is read (default 1 min).
	RenewalScanInterval time.Duration
	// Batch is how many due domains one poll takes (default 100).
	Batch int
	// Concurrency is how many domains this replica works on at once (default 8).
	Concurrency int
	// CheckTimeout bounds one DNS check (default 10 s); OrderTimeout one ACME order
	// (default 5 min).
	CheckTimeout, OrderTimeout time.Duration
	// Limits are the CA's rate limits the notary stays under (needs Budget).
	Limits Limits
	// DelegationZone is the zone wildcard domains delegate `_acme-challenge` into
	// (DNS-01); empty: wildcard domains are verified but not ordered.
	DelegationZone string
}

func (c Config) withDefaults() Config {
	set := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&c.LeaseTTL, 30*time.Second)
	set(&c.PollInterval, 5*time.Second)
	set(&c.RenewalScanInterval, time.Minute)
	set(&c.CheckTimeout, 10*time.Second)
	set(&c.OrderTimeout, 5*time.Minute)
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	return c
}

// Deps are the worker's collaborators.
type Deps struct {
	Log     *zap.Logger
	Store   domains.DomainStore
	Leases  leases.Store
	Certs   certstorev1.CertWriteServiceClient
	DNS     DNS
	CA      CA
	Metrics *Metrics
	// Budget counts orders against the CA's rate limits; nil: not counted.
	Budget budget.Store
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Worker runs the lifecycle for due domains.
type Worker struct {
	Deps
	cfg    Config
	nudges chan string
	sem    chan struct{}

	mu     sync.Mutex
	active map[string]bool
}

// New returns a worker; Run starts it.
func New(deps Deps, cfg Config) *Worker {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(nil)
	}
	cfg = cfg.withDefaults()
	return &Worker{Deps: deps, cfg: cfg, nudges: make(chan string, 4096), sem: make(chan struct{}, cfg.Concurrency), active: map[string]bool{}}
}

// source says why a domain is looked at.
type source uint8

const (
	fromDueIndex source = iota + 1
	fromRenewalIndex
	fromNudge
)

// Nudge asks the worker to look at host soon, whether or not it is due.
func (w *Worker) Nudge(host string) {
	select {
	case w.nudges <- host:
	default: // full: the due index brings it anyway
	}
}

// Run polls for due work until ctx ends, then waits for the domains in hand.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	renewals := time.NewTicker(w.cfg.RenewalScanInterval)
	defer renewals.Stop()
	w.pollDue(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			w.pollDue(ctx, &wg)
		case <-renewals.C:
			w.pollRenewals(ctx, &wg)
		case host := <-w.nudges:
			w.dispatch(ctx, &wg, host, fromNudge, true)
		}
	}
}

func (w *Worker) pollDue(ctx context.Context, wg *sync.WaitGroup) {
	due, err := w.Store.DueDomains(ctx, w.Now(), w.cfg.Batch)
	if err != nil {
		if ctx.Err() == nil {
			w.Log.Warn("reading the due index failed", zap.Error(err))
		}
		return
	}
	// Shuffled, so replicas polling together start on different domains.
	rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, host := range due {
		if !w.dispatch(ctx, wg, host, fromDueIndex, false) {
			return // all slots busy: the next poll continues
		}
	}
}

// pollRenewals reads certstore's renewal index, a second source beside the records'
// own NextAttemptAt, so a certificate whose record lost its schedule is still renewed.
func (w *Worker) pollRenewals(ctx context.Context, wg *sync.WaitGroup) {
	token := ""
	before := timestamppb.New(w.Now())
	for range 10 { // at most 10 pages per scan; the rest come next time
		resp, err := w.Certs.ListDue(ctx, &certstorev1.ListDueRequest{Before: before, PageSize: int32(w.cfg.Batch), PageToken: token})
		if err != nil {
			if ctx.Err() == nil {
				w.Log.Warn("reading certstore's renewal index failed", zap.Error(err))
			}
			return
		}
		for _, c := range resp.GetCertificates() {
			if !w.dispatch(ctx, wg, c.GetHostname(), fromRenewalIndex, false) {
				return
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return
		}
	}
}

// dispatch starts work on host unless this replica already works on it. With wait it
// waits for a free slot; otherwise it reports false when none is free.
func (w *Worker) dispatch(ctx context.Context, wg *sync.WaitGroup, host string, src source, wait bool) bool {
	w.mu.Lock()
	if w.active[host] {
		w.mu.Unlock()
		return true
	}
	w.active[host] = true
	w.mu.Unlock()
	release := func() {
		w.mu.Lock()
		delete(w.active, host)
		w.mu.Unlock()
	}
	if wait {
		select {
		case w.sem <- struct{}{}:
		case <-ctx.Done():
			release()
			return false
		}
	} else {
		select {
		case w.sem <- struct{}{}:
		default:
			release()
			return false
		}
	}
	wg.Go(func() {
		defer func() { <-w.sem; release() }()
		if err := w.process(ctx, host, src); err != nil && ctx.Err() == nil {
			w.Log.Warn("working on a domain failed", logging.Hostname(host), zap.Error(err))
		}
	})
	return true
}

// process takes host's lease (giving up at once when another replica holds it),
// re-reads the record under it, and runs the lifecycle when the domain is due.
func (w *Worker) process(ctx context.Context, host string, src source) error {
	return w.withLease(ctx, host, false, func(ctx context.Context) error {
		d, err := w.Store.GetDomain(ctx, host)
		if errors.Is(err, domains.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !w.due(d, src) {
			return nil // another replica did it meanwhile
		}
		_, err = w.run(ctx, d, lifecycle.Event{Kind: lifecycle.EventDue}, nil)
		return err
	})
}

func (w *Worker) due(d domains.Domain, src source) bool {
	now := w.Now()
	switch src {
	case fromNudge:
		return true
	case fromRenewalIndex:
		if d.Status == domains.StatusActive && d.CoveredBy == "" && !d.Progress.RenewAt.After(now) {
			return true
		}
	}
	return !d.NextAttemptAt.IsZero() && !d.NextAttemptAt.After(now)
}

// errLeaseBusy: the lease is held elsewhere and waiting for it timed out.
var errLeaseBusy = errors.New("another notary is working on the domain")

// withLease runs fn under host's lease. Without wait, a held lease is not an error (the
// holder does the work); with wait, it retries until ctx ends, then errLeaseBusy.
func (w *Worker) withLease(ctx context.Context, host string, wait bool, fn func(ctx context.Context) error) error {
	for {
		l, err := w.Leases.Acquire(ctx, host, w.cfg.LeaseTTL)
		switch {
		case err == nil:
			return leases.Hold(ctx, w.Leases, l, w.cfg.LeaseTTL, fn)
		case !errors.Is(err, leases.ErrHeld):
			return err
		case !wait:
			return nil
		}
		select {
		case <-ctx.Done():
			return errLeaseBusy
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// maxSteps bounds one round; no legitimate path needs more.
const maxSteps = 16

// run loops decide, persist, perform. stop, when set, ends the round before an effect
// it rejects (the record is persisted up to there). It returns the last record.
func (w *Worker) run(ctx context.Context, d domains.Domain, ev lifecycle.Event, stop func(lifecycle.Effect) bool) (domains.Domain, error) {
	for range maxSteps {
		now := w.Now()
		ev.Draw = rand.Float64()
		dec := lifecycle.Next(d, ev, now, w.cfg.Policy)
		if dec.Write {
			next := dec.Domain
			next.UpdatedAt = now
			stored, err := w.Store.UpdateDomain(ctx, next)
			if err != nil {
				if errors.Is(err, domains.ErrConflict) {
					return d, nil // changed meanwhile (settings, deletion): looked at again when due
				}
				return d, err
			}
			w.logTransition(d, stored, now)
			d = stored
		}
		if dec.Effect == lifecycle.EffectNone || (stop != nil && stop(dec.Effect)) {
			return d, nil
		}
		if dec.Effect == lifecycle.EffectDelete {
			if err := w.Store.DeleteDomain(ctx, d.Hostname, d.Version); err != nil && !errors.Is(err, domains.ErrConflict) && !errors.Is(err, domains.ErrNotFound) {
				return d, err
			}
			logging.Audit(w.Log, "domain removed", logging.Hostname(d.Hostname), logging.TenantID(d.TenantID))
			if d.Kind != domains.KindExact {
				// The subdomains this wildcard served need certificates of their own now.
				if n, err := domains.WakeCovered(ctx, w.Store, d.TenantID, d.Hostname, w.Now()); err != nil {
					w.Log.Warn("could not wake the domains the removed wildcard covered; they move at their next check", logging.Hostname(d.Hostname), zap.Error(err))
				} else if n > 0 {
					w.Log.Info("woke the domains the removed wildcard covered", logging.Hostname(d.Hostname), zap.Int("domains", n))
				}
			}
			return d, nil
		}
		ev = w.perform(ctx, dec.Effect, d)
		if ctx.Err() != nil {
			return d, ctx.Err() // lease lost or stopping: write nothing more
		}
	}
	return d, fmt.Errorf("domain %s: lifecycle did not settle in %d steps", d.Hostname, maxSteps)
}

func (w *Worker) logTransition(from, to domains.Domain, now time.Time) {
	if from.Status == to.Status {
		return
	}
	fields := []zap.Field{logging.Hostname(to.Hostname), logging.TenantID(to.TenantID), logging.DomainState(to.Status), zap.Stringer("from", from.Status)}
	if to.LastError != "" {
		fields = append(fields, zap.String("last_error", to.LastError))
	}
	switch to.Status {
	case domains.StatusVerified:
		logging.Audit(w.Log, "domain verified", fields...)
	case domains.StatusActive:
		if from.Status == domains.StatusIssuing || to.CoveredBy != "" && from.Status != domains.StatusActive {
			if !to.CreatedAt.IsZero() {
				w.Metrics.timeToActive.Observe(now.Sub(to.CreatedAt).Seconds())
			}
		}
		w.Log.Info("domain active", fields...)
	default:
		w.Log.Info("domain state changed", fields...)
	}
}

// perform runs one effect and reports its outcome as the next event.
func (w *Worker) perform(ctx context.Context, effect lifecycle.Effect, d domains.Domain) lifecycle.Event {
	switch effect {
	case lifecycle.EffectCheckOwnership:
		cctx, cancel := context.WithTimeout(ctx, w.cfg.CheckTimeout)
		defer cancel()
		r := w.DNS.Ownership(cctx, d.RegisteredDomain, d.VerificationToken)
		w.Metrics.verifications.WithLabelValues(verdictLabel(r.Verdict, "verified")).Inc()
		if r.Verdict == lifecycle.VerdictIndeterminate {
			w.Log.Info("ownership check got no definite answer", logging.Hostname(d.Hostname), zap.String("reason", r.Reason))
		}
		return lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: r.Verdict, Reason: r.Reason}
	case lifecycle.EffectPreflight:
		return w.preflight(ctx, d)
	case lifecycle.EffectIssue, lifecycle.EffectRenew:
		return w.order(ctx, d, effect == lifecycle.EffectRenew)
	case lifecycle.EffectCheckRenewalInfo:
		return w.renewalInfo(ctx, d)
	case lifecycle.EffectReverify:
		cctx, cancel := context.WithTimeout(ctx, w.cfg.CheckTimeout)
		defer cancel()
		var r dnscheck.Result
		if d.Kind == domains.KindExact {
			r = w.DNS.PointsAtEdge(cctx, d.Hostname)
		} else {
			// The served names, and the delegation: a removed CNAME would fail the next
			// renewal, so it counts as leaving the edge.
			r = w.DNS.ReverifyWildcard(cctx, w.wildcardCheck(d))
		}
		return lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: r.Verdict, Reason: r.Reason}
	case lifecycle.EffectWriteRoute:
		if err := w.writeRoute(ctx, d); err != nil {
			w.Log.Warn("writing the route failed", logging.Hostname(d.Hostname), zap.Error(err))
			return lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictIndeterminate}
		}
		return lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictOK}
	case lifecycle.EffectCheckCover:
		return w.checkCover(ctx, d)
	case lifecycle.EffectCleanup:
		return w.cleanup(ctx, d)
	}
	return lifecycle.Event{}
}

func verdictLabel(v lifecycle.Verdict, ok string) string {
	switch v {
	case lifecycle.VerdictOK:
		return ok
	case lifecycle.VerdictFailed:
		return "failed"
	}
	return "indeterminate"
}

// wildcardCheck describes a wildcard-kind domain for dnscheck; Target is empty when
// the notary has no delegation zone (then only the served names are checked).
func (w *Worker) wildcardCheck(d domains.Domain) dnscheck.Wildcard {
	wc := dnscheck.Wildcard{Base: delegation.Base(d), Apex: d.Kind == domains.KindApexAndWildcard}
	if w.cfg.DelegationZone != "" && d.DelegationLabel != "" {
		wc.Target = delegation.Target(strings.ToLower(d.DelegationLabel), w.cfg.DelegationZone)
	}
	return wc
}

func (w *Worker) preflight(ctx context.Context, d domains.Domain) lifecycle.Event {
	refuse := func(reason string) lifecycle.Event {
		return lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictFailed, Reason: reason}
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CheckTimeout)
	defer cancel()
	if d.Kind == domains.KindExact {
		r := w.DNS.Preflight(cctx, d.Hostname, false)
		return lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: r.Verdict, Reason: r.Reason}
	}
	// Wildcards need DNS-01 through the CNAME delegation: HTTP-01 cannot prove them.
	wc := w.wildcardCheck(d)
	switch {
	case w.cfg.DelegationZone == "":
		return refuse("pre-flight: wildcard certificates need DNS-01 through a CNAME delegation, and this notary has no -delegation-zone")
	case d.DelegationLabel == "":
		return refuse("pre-flight: the domain has no delegation label (it was claimed before a delegation zone was configured); delete and claim it again")
	}
	rival, found, err := delegation.Rival(cctx, w.Store, d)
	if err != nil {
		return lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictIndeterminate, Reason: err.Error()}
	}
	if found {
		return refuse(fmt.Sprintf("pre-flight: %s (%s) was claimed first and uses _acme-challenge.%s and the certificate name *.%s; this claim is not ordered while it exists",
			rival.Hostname, rival.Kind, wc.Base, wc.Base))
	}
	r := w.DNS.PreflightWildcard(cctx, wc)
	return lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: r.Verdict, Reason: r.Reason}
}

// writeRoute writes d's route under every name d is served by.
func (w *Worker) writeRoute(ctx context.Context, d domains.Domain) error {
	for _, name := range delegation.ServedNames(d) {
		_, err := w.Certs.SetRoute(ctx, &certstorev1.SetRouteRequest{Route: &certstorev1.Route{
			Hostname: name, TenantId: d.TenantID, Upstream: d.Upstream, RedirectHttps: d.RedirectHTTPS,
		}})
		if err := errkind.FromGRPC(err); err != nil {
			return err
		}
	}
	return nil
}

// order gets a certificate for d: adopted from certstore when a previous holder of this
// record stored one and died before recording it, otherwise ordered. The route is
// written before ordering (harmless without a certificate: the gateway serves nothing
// until one is stored), so a stored certificate is never left without its route.
func (w *Worker) order(ctx context.Context, d domains.Domain, renewal bool) lifecycle.Event {
	kind := "issue"
	if renewal {
		kind = "renew"
	}
	fail := func(out acmeclient.Outcome) lifecycle.Event {
		if out.Label != "lost" {
			w.Metrics.ordersFailed.WithLabelValues(out.Label).Inc()
		}
		return lifecycle.Event{Kind: lifecycle.EventOrder, Class: out.Class, RetryAfter: out.RetryAfter, Reason: out.Reason}
	}
	certstoreDown := func(err error) lifecycle.Event {
		if errkind.Is(err, errkind.FailedPrecondition) {
			w.Log.Warn("certstore refused the write as stale: a newer holder owns the domain", logging.Hostname(d.Hostname), zap.Error(err))
			return lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassLost}
		}
		if ctx.Err() != nil {
			return lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassLost}
		}
		w.Log.Warn("certstore call failed", logging.Hostname(d.Hostname), zap.Error(err))
		return lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTransient, Reason: "certstore could not be reached; retrying"}
	}

	stored, err := w.storedCertificate(ctx, d.Hostname)
	if err != nil {
		return certstoreDown(err)
	}
	if ev, adopted := w.adopt(ctx, d, stored, renewal); adopted {
		return ev
	}
	if err := w.writeRoute(ctx, d); err != nil {
		return certstoreDown(err)
	}
	if w.Budget != nil {
		u, err := w.Budget.Admit(ctx, d.RegisteredDomain, w.Now(), d.Hostname)
		if err != nil {
			w.Log.Warn("rate-limit budget unavailable; ordering without it", zap.Error(err))
		} else {
			w.Metrics.budgetUsed.WithLabelValues("orders_3h").Set(share(u.Orders3h, w.cfg.Limits.OrdersPer3h))
			if !u.Admitted {
				return fail(acmeclient.Outcome{Class: lifecycle.ClassRateLimited, RetryAfter: u.RetryAt.Sub(w.Now()), Label: "budget",
					Reason: "the notary held the order back to stay under the CA's rate limits; it waits for room"})
			}
		}
	}

	var replaces *x509.Certificate
	if renewal && stored != nil {
		replaces = stored.leaf
	}
	w.Metrics.ordersStarted.WithLabelValues(kind).Inc()
	octx, cancel := context.WithTimeout(ctx, w.cfg.OrderTimeout)
	defer cancel()
	w.Log.Info("ordering a certificate", logging.Hostname(d.Hostname), logging.TenantID(d.TenantID), zap.String("kind", kind), zap.Int64("fencing_token", d.FencingToken()))
	cert, err := w.CA.Obtain(octx, delegation.Names(d), replaces)
	if err != nil {
		out := acmeclient.Classify(err)
		if ctx.Err() != nil {
			out = acmeclient.Classify(ctx.Err())
		}
		w.Log.Warn("order failed", logging.Hostname(d.Hostname), zap.String("reason", out.Label), zap.Error(err))
		return fail(out)
	}

	now := w.Now()
	window, infoAt := w.fetchRenewalInfo(ctx, cert.Leaf, now)
	renewAt := lifecycle.RenewTime(cert.Leaf.NotBefore, cert.Leaf.NotAfter, window, rand.Float64())
	if err := w.put(ctx, d, cert, renewAt); err != nil {
		return certstoreDown(err)
	}
	w.Metrics.ordersSucceeded.WithLabelValues(kind).Inc()
	if w.Budget != nil {
		if n, err := w.Budget.Issued(ctx, d.RegisteredDomain, now, d.Hostname); err == nil {
			w.Metrics.budgetUsed.WithLabelValues("certificates_7d").Set(share(n, w.cfg.Limits.CertsPerDomainPer7d))
		}
	}
	logging.Audit(w.Log, "certificate issued", logging.Hostname(d.Hostname), logging.TenantID(d.TenantID),
		zap.String("serial", cert.Leaf.SerialNumber.Text(16)), zap.Time("not_after", cert.Leaf.NotAfter), zap.String("certificate_url", cert.URL))
	return lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassNone, Certificate: certInfo(cert.Leaf),
		RenewAt: renewAt, RenewalInfoAt: infoAt}
}

// put stores the certificate under every name d is served by, the domain's own name
// last (so that finding it there means the others were written: adoption reads it),
// each retrying a briefly unreachable certstore before giving up (an issued certificate
// is worth a few seconds).
func (w *Worker) put(ctx context.Context, d domains.Domain, cert acmeclient.Certificate, renewAt time.Time) error {
	for _, name := range delegation.ServedNames(d) {
		if err := w.putOne(ctx, name, d, cert, renewAt); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) putOne(ctx context.Context, name string, d domains.Domain, cert acmeclient.Certificate, renewAt time.Time) error {
	req := &certstorev1.PutCertificateRequest{
		Hostname: name, CertificateChain: cert.Chain, PrivateKey: cert.Key,
		FencingToken: d.FencingToken(), RenewTime: timestamppb.New(renewAt),
	}
	var err error
	for attempt := range 4 {
		_, err = w.Certs.PutCertificate(ctx, req)
		err = errkind.FromGRPC(err)
		if err == nil || !(errkind.Is(err, errkind.Unavailable) || errkind.Is(err, errkind.DeadlineExceeded)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	return err
}

// fetchRenewalInfo asks the CA's ARI for a fresh certificate's window; it returns no
// window (the lifetime rule applies) when the CA has none or did not answer, and when to
// ask again (zero when the CA offers no ARI).
func (w *Worker) fetchRenewalInfo(ctx context.Context, leaf *x509.Certificate, now time.Time) (*lifecycle.Window, time.Time) {
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CheckTimeout)
	defer cancel()
	win, retry, err := w.CA.RenewalInfo(cctx, leaf)
	switch {
	case errors.Is(err, acmeclient.ErrNoRenewalInfo):
		return nil, time.Time{}
	case err != nil:
		return nil, now.Add(time.Minute)
	}
	return &win, now.Add(w.cfg.Policy.RenewalInfoWait(retry))
}

type storedCert struct {
	leaf         *x509.Certificate
	fencingToken int64
}

// storedCertificate reads what certstore serves for host (nil when nothing).
func (w *Worker) storedCertificate(ctx context.Context, host string) (*storedCert, error) {
	resp, err := w.Certs.GetCertificate(ctx, &certstorev1.GetCertificateRequest{Hostname: host})
	if err = errkind.FromGRPC(err); err != nil {
		if errkind.Is(err, errkind.NotFound) {
			return nil, nil
		}
		return nil, err
	}
	if len(resp.GetCertificateChain()) == 0 {
		return nil, nil
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		return nil, fmt.Errorf("certstore holds an unparsable certificate for %s: %w", host, err)
	}
	return &storedCert{leaf: leaf, fencingToken: resp.GetFencingToken()}, nil
}

// adopt finishes an order a previous holder of this record completed: it stored the
// certificate (with a fencing token of this record's lifetime) and died before
// recording it. The certificate must cover host, be newer than the one the record
// knows, and have most of its life ahead.
func (w *Worker) adopt(ctx context.Context, d domains.Domain, stored *storedCert, renewal bool) (lifecycle.Event, bool) {
	if stored == nil || !d.OwnsFencingToken(stored.fencingToken) {
		return lifecycle.Event{}, false
	}
	leaf, now := stored.leaf, w.Now()
	if !coversNames(leaf, d) || !leaf.NotBefore.After(d.Certificate.NotBefore) {
		return lifecycle.Event{}, false
	}
	renewAt := lifecycle.RenewTime(leaf.NotBefore, leaf.NotAfter, nil, 0)
	if !renewAt.After(now) {
		return lifecycle.Event{}, false
	}
	if err := w.writeRoute(ctx, d); err != nil {
		return lifecycle.Event{}, false
	}
	window, infoAt := w.fetchRenewalInfo(ctx, leaf, now)
	if window != nil {
		renewAt = lifecycle.RenewTime(leaf.NotBefore, leaf.NotAfter, window, rand.Float64())
	}
	w.Log.Info("adopted the certificate a previous holder stored", logging.Hostname(d.Hostname), zap.String("serial", leaf.SerialNumber.Text(16)), zap.Bool("renewal", renewal))
	return lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassNone, Certificate: certInfo(leaf), RenewAt: renewAt, RenewalInfoAt: infoAt}, true
}

// coversNames reports whether leaf is a certificate for d: valid for its hostname, and
// for a wildcard kind naming every name of its order.
func coversNames(leaf *x509.Certificate, d domains.Domain) bool {
	if d.Kind == domains.KindExact {
		return leaf.VerifyHostname(d.Hostname) == nil
	}
	for _, n := range delegation.Names(d) {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

func certInfo(leaf *x509.Certificate) domains.CertificateInfo {
	return domains.CertificateInfo{
		Issuer: leaf.Issuer.String(), Serial: leaf.SerialNumber.Text(16),
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, DNSNames: leaf.DNSNames,
	}
}

func (w *Worker) renewalInfo(ctx context.Context, d domains.Domain) lifecycle.Event {
	stored, err := w.storedCertificate(ctx, d.Hostname)
	if err != nil {
		return lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictIndeterminate}
	}
	if stored == nil {
		// The record says ACTIVE but certstore serves nothing: renew now rather than wait.
		past := w.Now().Add(-time.Minute)
		return lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictOK, Window: lifecycle.Window{Start: past, End: past.Add(time.Second)}}
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CheckTimeout)
	defer cancel()
	win, retry, err := w.CA.RenewalInfo(cctx, stored.leaf)
	switch {
	case errors.Is(err, acmeclient.ErrNoRenewalInfo):
		return lifecycle.Event{Kind: lifecycle.EventRenewalInfo, NoRenewalInfo: true}
	case err != nil:
		return lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictIndeterminate}
	}
	return lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictOK, Window: win, RetryAfter: retry}
}

func (w *Worker) checkCover(ctx context.Context, d domains.Domain) lifecycle.Event {
	wd, err := w.Store.GetDomain(ctx, d.CoveredBy)
	switch {
	case errors.Is(err, domains.ErrNotFound):
		return lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictFailed}
	case err != nil:
		return lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictIndeterminate}
	}
	if covers(wd, d) {
		return lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictOK, CoveredBy: wd.Hostname}
	}
	return lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictFailed}
}

// covers reports whether wildcard domain wd serves d: same tenant, and a certificate in
// service (ACTIVE, or RENEWING while the old one serves).
func covers(wd, d domains.Domain) bool {
	return wd.TenantID == d.TenantID && wd.CoveredBy == "" &&
		(wd.Status == domains.StatusActive || wd.Status == domains.StatusRenewing) &&
		(wd.Kind == domains.KindWildcard || wd.Kind == domains.KindApexAndWildcard)
}

func (w *Worker) cleanup(ctx context.Context, d domains.Domain) lifecycle.Event {
	indeterminate := func(err error) lifecycle.Event {
		w.Log.Warn("removing a domain from certstore failed", logging.Hostname(d.Hostname), zap.Error(err))
		return lifecycle.Event{Kind: lifecycle.EventCleanedUp, Verdict: lifecycle.VerdictIndeterminate}
	}
	// An APEX_AND_WILDCARD domain is served under `*.<name>` as well. When an earlier
	// rival claim shares that name (pre-flight refuses the later of the two), a domain
	// that never got a certificate leaves the name to it.
	names := delegation.ServedNames(d)
	if d.Kind != domains.KindExact && d.Certificate.Serial == "" {
		if _, rivalFound, err := delegation.Rival(ctx, w.Store, d); err != nil {
			return indeterminate(err)
		} else if rivalFound {
			shared := "*." + delegation.Base(d)
			names = slices.DeleteFunc(names, func(n string) bool { return n == shared })
		}
	}
	for _, name := range names {
		_, err := w.Certs.DeleteRoute(ctx, &certstorev1.DeleteRouteRequest{Hostname: name})
		if err = errkind.FromGRPC(err); err != nil && !errkind.Is(err, errkind.NotFound) {
			return indeterminate(err)
		}
		if d.CoveredBy != "" { // a covered domain owns no certificate: the wildcard's stays
			continue
		}
		_, err = w.Certs.DeleteCertificate(ctx, &certstorev1.DeleteCertificateRequest{Hostname: name, FencingToken: d.FencingToken()})
		if err = errkind.FromGRPC(err); err != nil && !errkind.Is(err, errkind.NotFound) {
			return indeterminate(err)
		}
	}
	return lifecycle.Event{Kind: lifecycle.EventCleanedUp, Verdict: lifecycle.VerdictOK}
}

// VerifyNow checks host's ownership at once, under its lease (waiting for it while ctx
// allows), moves the domain on when proven, and hands the rest (pre-flight, order) to
// the worker. Domains past verification are nudged. It returns the resulting record.
func (w *Worker) VerifyNow(ctx context.Context, host string) (domains.Domain, error) {
	var out domains.Domain
	var nudge bool
	err := w.withLease(ctx, host, true, func(ctx context.Context) error {
		d, err := w.Store.GetDomain(ctx, host)
		if err != nil {
			return err
		}
		out, err = w.run(ctx, d, lifecycle.Event{Kind: lifecycle.EventVerifyNow}, func(e lifecycle.Effect) bool {
			if e != lifecycle.EffectCheckOwnership {
				nudge = true
				return true
			}
			return false
		})
		return err
	})
	if nudge {
		w.Nudge(host)
	}
	if errors.Is(err, errLeaseBusy) {
		return w.Store.GetDomain(context.WithoutCancel(ctx), host)
	}
	return out, err
}

// Enqueue starts on a new domain: when a wildcard domain of the same tenant serves it
// (`*.<parent>` of kind WILDCARD, or `<parent>` of kind APEX_AND_WILDCARD), it is made
// ACTIVE at once with CoveredBy and its route written; otherwise the worker is nudged.
// It returns the resulting record.
func (w *Worker) Enqueue(ctx context.Context, host string) (domains.Domain, error) {
	d, err := w.Store.GetDomain(ctx, host)
	if err != nil {
		return d, err
	}
	coverable := d.Kind == domains.KindExact && (d.Status == domains.StatusPendingVerification || d.Status == domains.StatusVerified || d.Status == domains.StatusFailed)
	if parent, ok := hostname.Parent(host); coverable && ok {
		wd, err := delegation.Owner(ctx, w.Store, strings.TrimPrefix(parent, "*."))
		if err == nil && covers(wd, d) {
			parent = wd.Hostname
			var out domains.Domain
			err := w.withLease(ctx, host, true, func(ctx context.Context) error {
				cur, err := w.Store.GetDomain(ctx, host)
				if err != nil {
					return err
				}
				out, err = w.run(ctx, cur, lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictOK, CoveredBy: parent}, nil)
				return err
			})
			if err == nil {
				return out, nil
			}
			if !errors.Is(err, errLeaseBusy) {
				return d, err
			}
		}
	}
	w.Nudge(host)
	return d, nil
}
