// Package lifecycle is the notary's state machine: a pure function from a persisted
// domain, one observation and the clock to a decision (the record to persist, and the
// one side effect to perform next). It performs no I/O: DNS lookups, ACME orders and
// certstore writes happen in the worker, which feeds their outcome back as the next
// Event. docs/lifecycle.md has the transition table.
//
// The worker's loop for a due domain, under the domain's lease:
//
//	ev := Event{Kind: EventDue}
//	for {
//		dec := Next(d, ev, now, policy)
//		if dec.Write { d = store.UpdateDomain(dec.Domain) } // compare-and-swap, before the effect
//		if dec.Effect == EffectNone { break }
//		ev = perform(dec.Effect, d)                         // DNS, ACME, certstore
//	}
//
// Because every decision is persisted before its effect, a process killed at any line
// leaves a record that says what was being done, and the next replica to take the lease
// redoes that step (each effect is safe to repeat).
package lifecycle

import (
	"time"

	"github.com/portico-dev/portico/pkg/domains"
)

// Effect is the side effect (or the observation) the worker performs after persisting a
// decision.
type Effect uint8

// The effects.
const (
	// EffectNone: nothing more to do now; the record says when to come back.
	EffectNone Effect = iota
	// EffectCheckOwnership: look up the TXT record at `_verify.<registered domain>`.
	EffectCheckOwnership
	// EffectPreflight: check that the hostname points at the edge and that CAA allows
	// the CA, before any order.
	EffectPreflight
	// EffectIssue: adopt a certificate a previous holder already stored, or order one,
	// store it with its key in certstore, and write the route.
	EffectIssue
	// EffectRenew: order a replacement of the current certificate (ARI `replaces`) and
	// store it; the old one serves until the new one is stored.
	EffectRenew
	// EffectCheckRenewalInfo: fetch the CA's renewal window (ARI) for the certificate.
	EffectCheckRenewalInfo
	// EffectReverify: check that an active (or moved) domain points at the edge.
	EffectReverify
	// EffectWriteRoute: write the domain's route (tenant, upstream, redirect) to certstore.
	EffectWriteRoute
	// EffectCheckCover: check that the wildcard domain serving this one is still active
	// and of the same tenant.
	EffectCheckCover
	// EffectCleanup: delete the route, and the certificate when the domain owns one.
	EffectCleanup
	// EffectDelete: delete the domain record (compare-and-swap on its version).
	EffectDelete
)

var effectNames = [...]string{
	EffectNone: "none", EffectCheckOwnership: "check-ownership", EffectPreflight: "preflight",
	EffectIssue: "issue", EffectRenew: "renew", EffectCheckRenewalInfo: "check-renewal-info",
	EffectReverify: "reverify", EffectWriteRoute: "write-route", EffectCheckCover: "check-cover",
	EffectCleanup: "cleanup", EffectDelete: "delete",
}

func (e Effect) String() string {
	if int(e) < len(effectNames) {
		return effectNames[e]
	}
	return "unknown"
}

// EventKind says what an Event reports.
type EventKind uint8

// The events. EventDue and EventVerifyNow start a round; the others report the outcome
// of the effect of the same name.
const (
	// EventDue: the domain's NextAttemptAt came, or a caller nudged it.
	EventDue EventKind = iota + 1
	// EventVerifyNow: a tenant asked to check ownership now.
	EventVerifyNow
	EventOwnership
	EventPreflight
	// EventOrder reports EffectIssue and EffectRenew.
	EventOrder
	EventRenewalInfo
	EventReverify
	EventRouteWritten
	// EventCover reports EffectCheckCover, and also starts a round when EnqueueDomain
	// finds a covering wildcard for a new domain.
	EventCover
	EventCleanedUp
)

// Verdict is the outcome of a check.
type Verdict uint8

// The verdicts.
const (
	// VerdictOK: the check passed.
	VerdictOK Verdict = iota + 1
	// VerdictFailed: the check definitely failed (the DNS answered, and the answer is no).
	VerdictFailed
	// VerdictIndeterminate: no definite answer (SERVFAIL, timeout, a dependency down):
	// retry later and change nothing else.
	VerdictIndeterminate
)

// Class is how an order failed.
type Class uint8

// The classes of order outcomes.
const (
	// ClassNone: the order succeeded.
	ClassNone Class = iota
	// ClassTransient: network errors, timeouts, 5xx, badNonce after lego's retries, or
	// certstore unavailable: retry soon, backing off.
	ClassTransient
	// ClassRateLimited: the CA (or the notary's own budget) said not before RetryAfter.
	ClassRateLimited
	// ClassTerminal: the CA refused (CAA, unauthorized, rejected identifier, failed
	// validation...): follow the failure schedule.
	ClassTerminal
	// ClassLost: certstore refused the write as stale (another holder wrote newer work)
	// or the lease was lost: stop, change nothing; the newer holder owns the domain.
	ClassLost
)

// Window is a renewal window suggested by the CA (ARI).
type Window struct {
	Start, End time.Time
}

// Event is one observation fed to Next.
type Event struct {
	Kind EventKind
	// Verdict of a check (ownership, preflight, reverify, cover, route, cleanup, ARI).
	Verdict Verdict
	// Reason says in stable words (no request ids, no times) why a check or an order
	// failed; it becomes the domain's LastError.
	Reason string
	// Class of an order outcome (EventOrder).
	Class Class
	// RetryAfter is the CA's wait for ClassRateLimited (zero: Policy.RateLimitWait).
	RetryAfter time.Duration
	// Certificate, RenewAt, RenewalInfoAt and OrderURL describe a stored certificate
	// (EventOrder with ClassNone). RenewalInfoAt is zero when the CA offers no ARI.
	Certificate   domains.CertificateInfo
	RenewAt       time.Time
	RenewalInfoAt time.Time
	OrderURL      string
	// Window is the CA's renewal window (EventRenewalInfo with VerdictOK); NoRenewalInfo
	// says the CA offers none.
	Window        Window
	NoRenewalInfo bool
	// CoveredBy names the covering wildcard domain (EventCover with VerdictOK).
	CoveredBy string
	// Draw is a random number in [0, 1) drawn by the caller: it places a renewal inside
	// the CA's window and spreads retries (up to a tenth of each delay), so that
	// replicas and domains do not act in lockstep. Tests pass fixed values.
	Draw float64
}

// Decision is what Next decided.
type Decision struct {
	// Domain is the record after the decision.
	Domain domains.Domain
	// Write says Domain differs from the input and must be persisted (compare-and-swap
	// on its Version) before Effect is performed.
	Write bool
	// Effect is the next thing to do.
	Effect Effect
}

// Policy holds the timings of the lifecycle. Zero fields take the defaults of
// DefaultPolicy.
type Policy struct {
	// VerifyInterval is the first spacing of ownership checks; it doubles after every
	// VerifyChecksPerStep definite failures, up to VerifyMaxInterval.
	VerifyInterval      time.Duration
	VerifyMaxInterval   time.Duration
	VerifyChecksPerStep int
	// VerifyDeadline is how long after creation ownership is retried (used when the
	// record carries no VerifyDeadline of its own); then the domain is FAILED.
	VerifyDeadline time.Duration
	// TransientRetry is the first wait after an indeterminate answer or a transient
	// error; it doubles with each consecutive one, up to TransientMaxRetry.
	TransientRetry    time.Duration
	TransientMaxRetry time.Duration
	// RateLimitWait is used when a rate-limit answer carries no Retry-After.
	RateLimitWait time.Duration
	// InFlight is how long an order in flight (ISSUING, RENEWING) is left to its holder
	// before the record becomes due again; the lease decides whether the holder is
	// still alive, so this only bounds how soon a dead holder's work is taken over.
	InFlight time.Duration
	// ReverifyInterval is how often an active domain is checked to point at the edge;
	// ReverifyRetry the spacing of checks after a definite failure.
	ReverifyInterval time.Duration
	ReverifyRetry    time.Duration
	// ReverifyThreshold is how many consecutive definite failures make a domain MOVED.
	ReverifyThreshold int
	// MovedGrace is how long a MOVED domain is kept (and re-checked) before removal.
	MovedGrace time.Duration
	// RenewalInfoInterval is the longest wait between two fetches of the CA's renewal
	// window; the CA's Retry-After shortens it, never lengthens it.
	RenewalInfoInterval time.Duration
}

// DefaultPolicy returns the production timings.
func DefaultPolicy() Policy {
	return Policy{
		VerifyInterval:      time.Minute,
		VerifyMaxInterval:   time.Hour,
		VerifyChecksPerStep: 5,
		VerifyDeadline:      7 * 24 * time.Hour,
		TransientRetry:      30 * time.Second,
		TransientMaxRetry:   30 * time.Minute,
		RateLimitWait:       time.Hour,
		InFlight:            2 * time.Minute,
		ReverifyInterval:    24 * time.Hour,
		ReverifyRetry:       time.Hour,
		ReverifyThreshold:   3,
		MovedGrace:          7 * 24 * time.Hour,
		RenewalInfoInterval: 6 * time.Hour,
	}
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&p.VerifyInterval, d.VerifyInterval)
	set(&p.VerifyMaxInterval, d.VerifyMaxInterval)
	set(&p.VerifyDeadline, d.VerifyDeadline)
	set(&p.TransientRetry, d.TransientRetry)
	set(&p.TransientMaxRetry, d.TransientMaxRetry)
	set(&p.RateLimitWait, d.RateLimitWait)
	set(&p.InFlight, d.InFlight)
	set(&p.ReverifyInterval, d.ReverifyInterval)
	set(&p.ReverifyRetry, d.ReverifyRetry)
	set(&p.MovedGrace, d.MovedGrace)
	set(&p.RenewalInfoInterval, d.RenewalInfoInterval)
	if p.VerifyChecksPerStep <= 0 {
		p.VerifyChecksPerStep = d.VerifyChecksPerStep
	}
	if p.ReverifyThreshold <= 0 {
		p.ReverifyThreshold = d.ReverifyThreshold
	}
	return p
}

// FailureDelay is the one retry schedule for definite failures of issuance and renewal
// (pre-flight refused, the CA refused the order). n is the number of consecutive
// failures, counting this one:
//
//	1st failure: 1 minute    (a DNS change still propagating, a brief CA hiccup)
//	2nd failure: 10 minutes
//	3rd failure: 100 minutes
//	after that:  daily       (someone must act; the daily attempt notices when they did)
//
// Let's Encrypt counts failed validations per account and hostname (5 per hour), so the
// schedule never comes near that limit, and pre-flight catches most causes before an
// order is placed at all.
func FailureDelay(n int) time.Duration {
	switch {
	case n <= 1:
		return time.Minute
	case n == 2:
		return 10 * time.Minute
	case n == 3:
		return 100 * time.Minute
	default:
		return 24 * time.Hour
	}
}

// verifyDelay spaces ownership checks: VerifyInterval for the first VerifyChecksPerStep
// failures, then doubling every VerifyChecksPerStep failures, capped at VerifyMaxInterval
// (1, 1, 1, 1, 1, 2, 2, ... 32 minutes, then hourly, by default).
func (p Policy) verifyDelay(failures int) time.Duration {
	steps := max(failures-1, 0) / p.VerifyChecksPerStep
	d := p.VerifyInterval
	for range steps {
		d *= 2
		if d >= p.VerifyMaxInterval {
			return p.VerifyMaxInterval
		}
	}
	return min(d, p.VerifyMaxInterval)
}

// transientDelay doubles from TransientRetry with each consecutive transient failure.
func (p Policy) transientDelay(n int) time.Duration {
	d := p.TransientRetry
	for i := 1; i < n; i++ {
		d *= 2
		if d >= p.TransientMaxRetry {
			return p.TransientMaxRetry
		}
	}
	return min(d, p.TransientMaxRetry)
}

// renewalInfoWait is the wait before the next ARI fetch: the CA's Retry-After, but never
// longer than RenewalInfoInterval, so an operator can bound how late a window the CA
// moves (a revocation) is noticed.
func (p Policy) renewalInfoWait(retryAfter time.Duration) time.Duration {
	if retryAfter > 0 && retryAfter < p.RenewalInfoInterval {
		return retryAfter
	}
	return p.RenewalInfoInterval
}

// RenewalInfoWait is renewalInfoWait for callers outside the transition function.
func (p Policy) RenewalInfoWait(retryAfter time.Duration) time.Duration {
	return p.withDefaults().renewalInfoWait(retryAfter)
}

// jitter lengthens d by up to a tenth, by the event's draw.
func jitter(d time.Duration, draw float64) time.Duration {
	if draw <= 0 || draw >= 1 {
		return d
	}
	return d + time.Duration(float64(d)/10*draw)
}

// RenewTime is when a certificate valid from notBefore to notAfter should be renewed:
// inside the CA's window when it suggests one (at the point draw selects, as RFC 9773
// recommends), otherwise when a third of its lifetime remains (half for certificates
// shorter than 10 days), made earlier by up to a twentieth of the lifetime by draw so
// that certificates issued together are not renewed together.
func RenewTime(notBefore, notAfter time.Time, window *Window, draw float64) time.Time {
	if window != nil && window.End.After(window.Start) {
		return window.Start.Add(time.Duration(float64(window.End.Sub(window.Start)) * draw))
	}
	lifetime := notAfter.Sub(notBefore)
	share := lifetime / 3
	if lifetime < 10*24*time.Hour {
		share = lifetime / 2
	}
	return notAfter.Add(-share).Add(-time.Duration(float64(lifetime) / 20 * draw))
}

// Next is the transition function: given the persisted domain d, the event ev and the
// time now, it returns the record to persist and the next effect. See docs/lifecycle.md.
func Next(d domains.Domain, ev Event, now time.Time, policy Policy) Decision {
	p := policy.withDefaults()
	m := machine{orig: d, d: d, ev: ev, now: now, p: p}
	effect := m.step()
	return Decision{Domain: m.d, Write: m.changed(), Effect: effect}
}

type machine struct {
	orig domains.Domain
	d    domains.Domain
	ev   Event
	now  time.Time
	p    Policy
}

func (m *machine) changed() bool {
	return !equalRecords(m.orig, m.d)
}

func (m *machine) step() Effect {
	switch m.ev.Kind {
	case EventDue, EventVerifyNow:
		return m.start()
	case EventOwnership:
		return m.ownership()
	case EventPreflight:
		return m.preflight()
	case EventOrder:
		return m.order()
	case EventRenewalInfo:
		return m.renewalInfo()
	case EventReverify:
		return m.reverify()
	case EventRouteWritten:
		return m.routeWritten()
	case EventCover:
		return m.cover()
	case EventCleanedUp:
		return m.cleanedUp()
	}
	return EffectNone
}

func (m *machine) verified() bool { return !m.d.VerifiedAt.IsZero() }

// start picks the first effect of a round from the state alone.
func (m *machine) start() Effect {
	d := &m.d
	switch d.Status {
	case domains.StatusPendingVerification:
		m.fillDeadline()
		return EffectCheckOwnership
	case domains.StatusVerified, domains.StatusIssuing, domains.StatusRenewing:
		return EffectPreflight
	case domains.StatusFailed:
		if m.verified() {
			return EffectPreflight
		}
		return EffectCheckOwnership
	case domains.StatusActive:
		if d.CoveredBy != "" {
			return EffectCheckCover
		}
		return EffectWriteRoute
	case domains.StatusMoved:
		if !m.now.Before(d.Progress.MovedAt.Add(m.p.MovedGrace)) {
			d.Status = domains.StatusDeleting
			d.NextAttemptAt = m.now
			d.LastError = "removed: the domain stopped pointing at the edge and the grace period ended"
			return EffectCleanup
		}
		return EffectReverify
	case domains.StatusDeleting:
		return EffectCleanup
	}
	// An unknown state is left alone rather than guessed at; it is not scheduled again.
	d.NextAttemptAt = time.Time{}
	return EffectNone
}

func (m *machine) fillDeadline() {
	if m.d.VerifyDeadline.IsZero() {
		from := m.d.CreatedAt
		if from.IsZero() {
			from = m.now
		}
		m.d.VerifyDeadline = from.Add(m.p.VerifyDeadline)
	}
}

// indeterminate changes nothing but the retry time.
func (m *machine) indeterminate() Effect {
	m.d.Progress.TransientFailures++
	m.d.NextAttemptAt = m.now.Add(jitter(m.p.transientDelay(m.d.Progress.TransientFailures), m.ev.Draw))
	return EffectNone
}

func (m *machine) ownership() Effect {
	d := &m.d
	if d.Status != domains.StatusPendingVerification && !(d.Status == domains.StatusFailed && !m.verified()) {
		return EffectNone // stale: someone moved the domain on meanwhile
	}
	d.Progress.LastCheckedAt = m.now
	switch m.ev.Verdict {
	case VerdictOK:
		d.Status = domains.StatusVerified
		d.VerifiedAt = m.now
		d.LastError = ""
		d.Progress.Failures = 0
		d.Progress.TransientFailures = 0
		d.NextAttemptAt = m.now
		return EffectPreflight
	case VerdictFailed:
		m.fillDeadline()
		d.Progress.Failures++
		d.Progress.TransientFailures = 0
		if d.Status == domains.StatusFailed || !m.now.Before(d.VerifyDeadline) {
			d.Status = domains.StatusFailed
			d.LastError = "ownership not proven before the verification deadline: " + m.ev.Reason
			d.NextAttemptAt = time.Time{} // only verify-now brings it back
			return EffectNone
		}
		d.LastError = m.ev.Reason
		next := m.now.Add(jitter(m.p.verifyDelay(d.Progress.Failures), m.ev.Draw))
		if next.After(d.VerifyDeadline) {
			next = d.VerifyDeadline
		}
		d.NextAttemptAt = next
		return EffectNone
	}
	if d.Status == domains.StatusFailed {
		return EffectNone // a verify-now that got no answer changes nothing
	}
	return m.indeterminate()
}

func (m *machine) renewing() bool {
	return m.d.Status == domains.StatusActive || m.d.Status == domains.StatusRenewing
}

func (m *machine) preflight() Effect {
	d := &m.d
	switch d.Status {
	case domains.StatusVerified, domains.StatusIssuing, domains.StatusActive, domains.StatusRenewing:
	case domains.StatusFailed:
		if !m.verified() {
			return EffectNone
		}
	default:
		return EffectNone
	}
	d.Progress.LastCheckedAt = m.now
	switch m.ev.Verdict {
	case VerdictOK:
		effect := EffectIssue
		if m.renewing() {
			effect = EffectRenew
			d.Status = domains.StatusRenewing
		} else {
			d.Status = domains.StatusIssuing
		}
		d.Progress.OrderStartedAt = m.now
		d.Progress.OrderURL = ""
		d.NextAttemptAt = m.now.Add(m.p.InFlight)
		return effect
	case VerdictFailed:
		d.Progress.Failures++
		d.Progress.TransientFailures = 0
		d.LastError = m.ev.Reason
		retry := m.now.Add(jitter(FailureDelay(d.Progress.Failures), m.ev.Draw))
		if m.renewing() {
			d.Status = domains.StatusActive // the current certificate keeps serving
			m.scheduleActive(retry)
			return EffectNone
		}
		d.Status = domains.StatusFailed
		d.NextAttemptAt = retry
		return EffectNone
	}
	if d.Status == domains.StatusRenewing {
		d.Status = domains.StatusActive
	}
	if d.Status == domains.StatusIssuing {
		d.Status = domains.StatusVerified
	}
	if d.Status == domains.StatusActive {
		d.Progress.TransientFailures++
		m.scheduleActive(m.now.Add(jitter(m.p.transientDelay(d.Progress.TransientFailures), m.ev.Draw)))
		return EffectNone
	}
	return m.indeterminate()
}

func (m *machine) order() Effect {
	d := &m.d
	if d.Status != domains.StatusIssuing && d.Status != domains.StatusRenewing {
		return EffectNone
	}
	renewal := d.Status == domains.StatusRenewing
	if m.ev.Class == ClassLost {
		return EffectNone // the newer holder's record stands
	}
	d.Progress.OrderStartedAt = time.Time{}
	if m.ev.OrderURL != "" {
		d.Progress.OrderURL = m.ev.OrderURL
	}
	var retry time.Time
	switch m.ev.Class {
	case ClassNone:
		d.Status = domains.StatusActive
		d.Certificate = m.ev.Certificate
		d.CoveredBy = ""
		d.LastError = ""
		d.Progress.Failures = 0
		d.Progress.TransientFailures = 0
		d.Progress.RenewAt = m.ev.RenewAt
		d.Progress.RenewalInfoAt = m.ev.RenewalInfoAt
		if !renewal || d.Progress.ReverifyAt.IsZero() {
			d.Progress.ReverifyAt = m.now.Add(m.p.ReverifyInterval)
		}
		m.scheduleActive(time.Time{})
		return EffectNone
	case ClassTransient:
		d.Progress.TransientFailures++
		d.LastError = m.ev.Reason
		retry = m.now.Add(jitter(m.p.transientDelay(d.Progress.TransientFailures), m.ev.Draw))
	case ClassRateLimited:
		wait := m.ev.RetryAfter
		if wait <= 0 {
			wait = m.p.RateLimitWait
		}
		d.LastError = m.ev.Reason
		retry = m.now.Add(wait) // honoured exactly: never earlier than the CA said
	default: // ClassTerminal
		d.Progress.Failures++
		d.Progress.TransientFailures = 0
		d.LastError = m.ev.Reason
		retry = m.now.Add(jitter(FailureDelay(d.Progress.Failures), m.ev.Draw))
		if !renewal {
			d.Status = domains.StatusFailed
			d.NextAttemptAt = retry
			return EffectNone
		}
	}
	if renewal {
		d.Status = domains.StatusActive
		m.scheduleActive(retry)
		return EffectNone
	}
	d.Status = domains.StatusVerified
	d.NextAttemptAt = retry
	return EffectNone
}

func (m *machine) renewalInfo() Effect {
	d := &m.d
	if d.Status != domains.StatusActive || d.CoveredBy != "" {
		return EffectNone
	}
	switch {
	case m.ev.NoRenewalInfo:
		d.Progress.RenewalInfoAt = time.Time{}
	case m.ev.Verdict == VerdictOK:
		w := m.ev.Window
		// Keep the chosen time while the window still contains it, so renewals do not
		// wander with every fetch; choose again when the CA moved the window.
		if d.Progress.RenewAt.Before(w.Start) || d.Progress.RenewAt.After(w.End) {
			d.Progress.RenewAt = RenewTime(time.Time{}, time.Time{}, &w, m.ev.Draw)
		}
		d.Progress.RenewalInfoAt = m.now.Add(m.p.renewalInfoWait(m.ev.RetryAfter))
	default:
		// No answer: keep the renewal time we have and ask again later.
		d.Progress.RenewalInfoAt = m.now.Add(jitter(m.p.transientDelay(1), m.ev.Draw))
	}
	return m.activeNext()
}

func (m *machine) reverify() Effect {
	d := &m.d
	switch d.Status {
	case domains.StatusActive:
	case domains.StatusMoved:
		return m.reverifyMoved()
	default:
		return EffectNone
	}
	d.Progress.LastCheckedAt = m.now
	switch m.ev.Verdict {
	case VerdictOK:
		if d.Progress.ReverifyFailures > 0 {
			d.LastError = ""
		}
		d.Progress.ReverifyFailures = 0
		d.Progress.TransientFailures = 0
		d.Progress.ReverifyAt = m.now.Add(m.p.ReverifyInterval)
		return m.activeNext()
	case VerdictFailed:
		d.Progress.ReverifyFailures++
		d.Progress.TransientFailures = 0
		if d.Progress.ReverifyFailures >= m.p.ReverifyThreshold {
			d.Status = domains.StatusMoved
			d.Progress.MovedAt = m.now
			d.LastError = "moved: " + m.ev.Reason
			d.NextAttemptAt = earliest(m.now.Add(m.p.ReverifyInterval), m.now.Add(m.p.MovedGrace))
			return EffectNone // renewal stops
		}
		d.LastError = m.ev.Reason
		d.Progress.ReverifyAt = m.now.Add(jitter(m.p.ReverifyRetry, m.ev.Draw))
		return m.activeNext()
	}
	d.Progress.TransientFailures++
	d.Progress.ReverifyAt = m.now.Add(jitter(m.p.transientDelay(d.Progress.TransientFailures), m.ev.Draw))
	return m.activeNext()
}

// reverifyMoved re-checks a MOVED domain: back at the edge within the grace period, it
// is ACTIVE again.
func (m *machine) reverifyMoved() Effect {
	d := &m.d
	d.Progress.LastCheckedAt = m.now
	removeAt := d.Progress.MovedAt.Add(m.p.MovedGrace)
	switch m.ev.Verdict {
	case VerdictOK:
		d.Status = domains.StatusActive
		d.LastError = ""
		d.Progress.MovedAt = time.Time{}
		d.Progress.ReverifyFailures = 0
		d.Progress.TransientFailures = 0
		d.Progress.ReverifyAt = m.now.Add(m.p.ReverifyInterval)
		return EffectWriteRoute
	case VerdictFailed:
		d.Progress.TransientFailures = 0
		d.LastError = "moved: " + m.ev.Reason
		d.NextAttemptAt = earliest(m.now.Add(m.p.ReverifyInterval), removeAt)
		return EffectNone
	}
	d.Progress.TransientFailures++
	d.NextAttemptAt = earliest(m.now.Add(jitter(m.p.transientDelay(d.Progress.TransientFailures), m.ev.Draw)), removeAt)
	return EffectNone
}

func (m *machine) routeWritten() Effect {
	d := &m.d
	if d.Status != domains.StatusActive {
		return EffectNone
	}
	if m.ev.Verdict != VerdictOK {
		d.Progress.TransientFailures++
		d.NextAttemptAt = m.now.Add(jitter(m.p.transientDelay(d.Progress.TransientFailures), m.ev.Draw))
		return EffectNone
	}
	return m.activeNext()
}

func (m *machine) cover() Effect {
	d := &m.d
	switch d.Status {
	case domains.StatusPendingVerification, domains.StatusVerified, domains.StatusFailed:
		if m.ev.Verdict != VerdictOK {
			return EffectNone // not covered: the ordinary path goes on
		}
		// A wildcard of the same tenant serves it: the TXT record under the same
		// registered domain proved that tenant's ownership already.
		d.Status = domains.StatusActive
		d.CoveredBy = m.ev.CoveredBy
		if d.VerifiedAt.IsZero() {
			d.VerifiedAt = m.now
		}
		d.LastError = ""
		d.Progress = domains.Progress{LastCheckedAt: m.now, ReverifyAt: m.now.Add(m.p.ReverifyInterval)}
		d.NextAttemptAt = m.now // due again at once should the route write be lost
		return EffectWriteRoute
	case domains.StatusActive:
		if d.CoveredBy == "" {
			return EffectNone
		}
	default:
		return EffectNone
	}
	switch m.ev.Verdict {
	case VerdictOK:
		return EffectWriteRoute
	case VerdictFailed:
		// The wildcard is gone (deleted, moved, another tenant's): get a certificate of
		// its own, keeping the route (the gateway serves nothing until it is stored).
		d.Status = domains.StatusVerified
		d.CoveredBy = ""
		d.LastError = ""
		d.Progress.Failures = 0
		d.NextAttemptAt = m.now
		return EffectPreflight
	}
	d.Progress.TransientFailures++
	d.NextAttemptAt = m.now.Add(jitter(m.p.transientDelay(d.Progress.TransientFailures), m.ev.Draw))
	return EffectNone
}

func (m *machine) cleanedUp() Effect {
	d := &m.d
	if d.Status != domains.StatusDeleting {
		return EffectNone
	}
	if m.ev.Verdict == VerdictOK {
		return EffectDelete
	}
	return m.indeterminate()
}

// activeNext picks the next due piece of work of an ACTIVE domain (re-verification, the
// CA's renewal window, renewal), or schedules the earliest of them.
func (m *machine) activeNext() Effect {
	d := &m.d
	pr := &d.Progress
	if pr.ReverifyAt.IsZero() {
		pr.ReverifyAt = m.now.Add(m.p.ReverifyInterval)
	}
	if !pr.ReverifyAt.After(m.now) {
		return EffectReverify
	}
	if d.CoveredBy == "" {
		if !pr.RenewalInfoAt.IsZero() && !pr.RenewalInfoAt.After(m.now) {
			return EffectCheckRenewalInfo
		}
		if !pr.RenewAt.IsZero() && !pr.RenewAt.After(m.now) {
			return EffectPreflight
		}
	}
	m.scheduleActive(time.Time{})
	return EffectNone
}

// scheduleActive sets NextAttemptAt of an ACTIVE domain to the earliest of its pending
// works, and of retry when set.
func (m *machine) scheduleActive(retry time.Time) {
	d := &m.d
	pr := d.Progress
	next := retry
	consider := func(t time.Time) {
		if !t.IsZero() && t.After(m.now) {
			next = earliest(next, t)
		}
	}
	consider(pr.ReverifyAt)
	if d.CoveredBy == "" {
		consider(pr.RenewalInfoAt)
		consider(pr.RenewAt)
	}
	d.NextAttemptAt = next
}

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

func equalRecords(a, b domains.Domain) bool {
	if len(a.Certificate.DNSNames) != len(b.Certificate.DNSNames) {
		return false
	}
	for i := range a.Certificate.DNSNames {
		if a.Certificate.DNSNames[i] != b.Certificate.DNSNames[i] {
			return false
		}
	}
	a.Certificate.DNSNames, b.Certificate.DNSNames = nil, nil
	return a.Status == b.Status && a.CoveredBy == b.CoveredBy && a.LastError == b.LastError &&
		a.NextAttemptAt.Equal(b.NextAttemptAt) && a.VerifyDeadline.Equal(b.VerifyDeadline) &&
		a.VerifiedAt.Equal(b.VerifiedAt) && equalCert(a.Certificate, b.Certificate) &&
		equalProgress(a.Progress, b.Progress)
}

func equalCert(a, b domains.CertificateInfo) bool {
	return a.Issuer == b.Issuer && a.Serial == b.Serial && a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter)
}

func equalProgress(a, b domains.Progress) bool {
	return a.OrderURL == b.OrderURL && a.Failures == b.Failures && a.ReverifyFailures == b.ReverifyFailures &&
		a.TransientFailures == b.TransientFailures && a.LastCheckedAt.Equal(b.LastCheckedAt) &&
		a.MovedAt.Equal(b.MovedAt) && a.OrderStartedAt.Equal(b.OrderStartedAt) && a.RenewAt.Equal(b.RenewAt) &&
		a.RenewalInfoAt.Equal(b.RenewalInfoAt) && a.ReverifyAt.Equal(b.ReverifyAt)
}
