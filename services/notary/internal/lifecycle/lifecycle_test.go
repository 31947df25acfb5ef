package lifecycle_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// now is the injected clock of every case.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

var policy = lifecycle.DefaultPolicy()

func pending() domains.Domain {
	return domains.Domain{
		Hostname: "shop.example.com", TenantID: "acme", Kind: domains.KindExact,
		RegisteredDomain: "example.com", Status: domains.StatusPendingVerification,
		VerificationToken: "tok", NextAttemptAt: now, CreatedAt: now.Add(-time.Hour),
		VerifyDeadline: now.Add(6 * 24 * time.Hour), Version: 3,
	}
}

func verified() domains.Domain {
	d := pending()
	d.Status = domains.StatusVerified
	d.VerifiedAt = now.Add(-time.Minute)
	return d
}

func issuing() domains.Domain {
	d := verified()
	d.Status = domains.StatusIssuing
	d.Progress.OrderStartedAt = now.Add(-3 * time.Minute)
	return d
}

func failedVerified() domains.Domain {
	d := verified()
	d.Status = domains.StatusFailed
	d.LastError = "the CA refused"
	d.Progress.Failures = 1
	return d
}

func failedUnverified() domains.Domain {
	d := pending()
	d.Status = domains.StatusFailed
	d.NextAttemptAt = time.Time{}
	d.LastError = "ownership not proven before the verification deadline: no TXT record"
	return d
}

var cert = domains.CertificateInfo{Issuer: "CN=Pebble Intermediate", Serial: "01", NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), DNSNames: []string{"shop.example.com"}}

func active() domains.Domain {
	d := verified()
	d.Status = domains.StatusActive
	d.Certificate = cert
	d.Progress.RenewAt = now.Add(5 * 24 * time.Hour)
	d.Progress.RenewalInfoAt = now.Add(3 * time.Hour)
	d.Progress.ReverifyAt = now.Add(2 * time.Hour)
	d.NextAttemptAt = now
	return d
}

func renewing() domains.Domain {
	d := active()
	d.Status = domains.StatusRenewing
	d.Progress.RenewAt = now.Add(-time.Hour)
	d.Progress.OrderStartedAt = now.Add(-3 * time.Minute)
	return d
}

func covered() domains.Domain {
	d := active()
	d.Certificate = domains.CertificateInfo{}
	d.CoveredBy = "*.example.com"
	d.Progress = domains.Progress{ReverifyAt: now.Add(2 * time.Hour)}
	return d
}

func moved() domains.Domain {
	d := active()
	d.Status = domains.StatusMoved
	d.Progress.MovedAt = now.Add(-24 * time.Hour)
	d.Progress.ReverifyFailures = 3
	d.LastError = "moved: hostname resolves to 203.0.113.7, not to the edge"
	return d
}

func deleting() domains.Domain {
	d := active()
	d.Status = domains.StatusDeleting
	return d
}

func TestNext(t *testing.T) {
	newCert := domains.CertificateInfo{Issuer: "CN=Pebble Intermediate", Serial: "02", NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), DNSNames: []string{"shop.example.com"}}
	tests := []struct {
		name       string
		in         domains.Domain
		ev         lifecycle.Event
		want       func(d *domains.Domain) // applied to a copy of in; nil: no write
		wantEffect lifecycle.Effect
	}{
		// PENDING_VERIFICATION
		{
			name: "pending/due checks ownership without writing", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectCheckOwnership,
		},
		{
			name: "pending/due fills a missing deadline from creation", in: func() domains.Domain { d := pending(); d.VerifyDeadline = time.Time{}; return d }(),
			ev:   lifecycle.Event{Kind: lifecycle.EventDue},
			want: func(d *domains.Domain) { d.VerifyDeadline = d.CreatedAt.Add(7 * 24 * time.Hour) }, wantEffect: lifecycle.EffectCheckOwnership,
		},
		{
			name: "pending/ownership proven moves to VERIFIED and on to pre-flight", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.VerifiedAt, d.NextAttemptAt, d.Progress.LastCheckedAt = now, now, now
			},
			wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "pending/TXT missing stays pending, says why, first minutes often", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "no TXT record at _verify.example.com"},
			want: func(d *domains.Domain) {
				d.LastError = "no TXT record at _verify.example.com"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(time.Minute)
			},
		},
		{
			name: "pending/repeated failures back off", in: func() domains.Domain { d := pending(); d.Progress.Failures = 12; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "no TXT record at _verify.example.com"},
			want: func(d *domains.Domain) {
				d.LastError = "no TXT record at _verify.example.com"
				d.Progress.Failures, d.Progress.LastCheckedAt = 13, now
				d.NextAttemptAt = now.Add(4 * time.Minute) // 13th failure: third doubling step
			},
		},
		{
			name: "pending/backoff is capped at the max interval", in: func() domains.Domain { d := pending(); d.Progress.Failures = 500; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "r"},
			want: func(d *domains.Domain) {
				d.LastError = "r"
				d.Progress.Failures, d.Progress.LastCheckedAt = 501, now
				d.NextAttemptAt = now.Add(time.Hour)
			},
		},
		{
			name: "pending/next check never goes past the deadline", in: func() domains.Domain { d := pending(); d.VerifyDeadline = now.Add(20 * time.Second); return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "r"},
			want: func(d *domains.Domain) {
				d.LastError = "r"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(20 * time.Second)
			},
		},
		{
			name: "pending/deadline passed fails with the reason and stops", in: func() domains.Domain { d := pending(); d.VerifyDeadline = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "no TXT record at _verify.example.com"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusFailed
				d.LastError = "ownership not proven before the verification deadline: no TXT record at _verify.example.com"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = time.Time{}
			},
		},
		{
			name: "pending/indeterminate changes nothing but the retry time", in: func() domains.Domain {
				d := pending()
				d.LastError = "no TXT record"
				d.Progress.Failures = 4
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictIndeterminate, Reason: "SERVFAIL"},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "pending/indeterminate does not fail a passed deadline", in: func() domains.Domain {
				d := pending()
				d.VerifyDeadline = now.Add(-time.Hour)
				d.Progress.TransientFailures = 2
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 3, now
				d.NextAttemptAt = now.Add(2 * time.Minute)
			},
		},
		{
			name: "pending/jitter lengthens a retry by at most a tenth", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "r", Draw: 0.5},
			want: func(d *domains.Domain) {
				d.LastError = "r"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(time.Minute + 3*time.Second)
			},
		},
		{
			name: "pending/covered by a wildcard of the same tenant is ACTIVE at once", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictOK, CoveredBy: "*.example.com"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.CoveredBy = "*.example.com"
				d.VerifiedAt = now
				d.Progress = domains.Progress{LastCheckedAt: now, ReverifyAt: now.Add(24 * time.Hour)}
				d.NextAttemptAt = now
			},
			wantEffect: lifecycle.EffectWriteRoute,
		},
		{
			name: "pending/not covered changes nothing", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictFailed},
		},
		{
			name: "pending/a stale order outcome is ignored", in: pending(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassNone, Certificate: newCert},
		},

		// VERIFIED
		{
			name: "verified/due runs pre-flight", in: verified(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "verified/pre-flight passed persists ISSUING before the order", in: verified(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusIssuing
				d.Progress.OrderStartedAt, d.Progress.LastCheckedAt = now, now
				d.NextAttemptAt = now.Add(2 * time.Minute)
			},
			wantEffect: lifecycle.EffectIssue,
		},
		{
			name: "verified/pre-flight refused (CAA) fails with the check named, no order", in: verified(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictFailed, Reason: "pre-flight CAA: example.com allows only other-ca.example"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusFailed
				d.LastError = "pre-flight CAA: example.com allows only other-ca.example"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(time.Minute)
			},
		},
		{
			name: "verified/pre-flight indeterminate retries later", in: verified(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "verified/a stale ownership answer is ignored", in: verified(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "r"},
		},
		{
			name: "verified/covered by a wildcard is ACTIVE at once", in: verified(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictOK, CoveredBy: "*.example.com"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.CoveredBy = "*.example.com"
				d.Progress = domains.Progress{LastCheckedAt: now, ReverifyAt: now.Add(24 * time.Hour)}
				d.NextAttemptAt = now
			},
			wantEffect: lifecycle.EffectWriteRoute,
		},

		// ISSUING
		{
			name: "issuing/due (holder gone) runs pre-flight again before a new order", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "issuing/pre-flight passed restarts the order with a fresh version", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Progress.OrderStartedAt, d.Progress.LastCheckedAt = now, now
				d.NextAttemptAt = now.Add(2 * time.Minute)
			},
			wantEffect: lifecycle.EffectIssue,
		},
		{
			name: "issuing/pre-flight indeterminate goes back to VERIFIED", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "issuing/issued makes the domain ACTIVE with its certificate and schedule", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassNone, Certificate: newCert, OrderURL: "https://ca/order/7",
				RenewAt: now.Add(60 * 24 * time.Hour), RenewalInfoAt: now.Add(6 * time.Hour)},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.Certificate = newCert
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.OrderURL = "https://ca/order/7"
				d.Progress.RenewAt = now.Add(60 * 24 * time.Hour)
				d.Progress.RenewalInfoAt = now.Add(6 * time.Hour)
				d.Progress.ReverifyAt = now.Add(24 * time.Hour)
				d.NextAttemptAt = now.Add(6 * time.Hour)
			},
		},
		{
			name: "issuing/transient error goes back to VERIFIED and retries soon", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTransient, Reason: "the CA could not be reached"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.LastError = "the CA could not be reached"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.TransientFailures = 1
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "issuing/transient errors back off up to the cap", in: func() domains.Domain { d := issuing(); d.Progress.TransientFailures = 20; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTransient, Reason: "the CA could not be reached"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.LastError = "the CA could not be reached"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.TransientFailures = 21
				d.NextAttemptAt = now.Add(30 * time.Minute)
			},
		},
		{
			name: "issuing/rate limited honours Retry-After exactly", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassRateLimited, RetryAfter: 90 * time.Minute, Reason: "the CA's rate limit was reached", Draw: 0.9},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.LastError = "the CA's rate limit was reached"
				d.Progress.OrderStartedAt = time.Time{}
				d.NextAttemptAt = now.Add(90 * time.Minute)
			},
		},
		{
			name: "issuing/rate limited without Retry-After waits the default", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassRateLimited, Reason: "the CA's rate limit was reached"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.LastError = "the CA's rate limit was reached"
				d.Progress.OrderStartedAt = time.Time{}
				d.NextAttemptAt = now.Add(time.Hour)
			},
		},
		{
			name: "issuing/terminal error fails on the schedule (1st: 1 min)", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTerminal, Reason: "the CA could not validate the HTTP-01 challenge (connection)"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusFailed
				d.LastError = "the CA could not validate the HTTP-01 challenge (connection)"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.Failures = 1
				d.NextAttemptAt = now.Add(time.Minute)
			},
		},
		{
			name: "issuing/lost lease or stale fencing writes nothing", in: issuing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassLost},
		},

		// FAILED
		{
			name: "failed (verified)/due retries pre-flight", in: failedVerified(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "failed (verified)/pre-flight passed orders again", in: failedVerified(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusIssuing
				d.Progress.OrderStartedAt, d.Progress.LastCheckedAt = now, now
				d.NextAttemptAt = now.Add(2 * time.Minute)
			},
			wantEffect: lifecycle.EffectIssue,
		},
		{
			name: "failed (verified)/2nd terminal failure waits 10 min", in: func() domains.Domain { d := issuing(); d.Progress.Failures = 1; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTerminal, Reason: "r"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusFailed
				d.LastError = "r"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.Failures = 2
				d.NextAttemptAt = now.Add(10 * time.Minute)
			},
		},
		{
			name: "failed (verified)/3rd terminal failure waits 100 min", in: func() domains.Domain { d := issuing(); d.Progress.Failures = 2; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTerminal, Reason: "r"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusFailed
				d.LastError = "r"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.Failures = 3
				d.NextAttemptAt = now.Add(100 * time.Minute)
			},
		},
		{
			name: "failed (verified)/later failures wait a day", in: func() domains.Domain { d := failedVerified(); d.Progress.Failures = 7; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictFailed, Reason: "the CA refused"},
			want: func(d *domains.Domain) {
				d.Progress.Failures, d.Progress.LastCheckedAt = 8, now
				d.NextAttemptAt = now.Add(24 * time.Hour)
			},
		},
		{
			name: "failed (unverified)/verify-now checks ownership", in: failedUnverified(),
			ev: lifecycle.Event{Kind: lifecycle.EventVerifyNow}, wantEffect: lifecycle.EffectCheckOwnership,
		},
		{
			name: "failed (unverified)/ownership proven at last moves on", in: failedUnverified(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.LastError = ""
				d.VerifiedAt, d.NextAttemptAt, d.Progress.LastCheckedAt = now, now, now
			},
			wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "failed (unverified)/still missing stays FAILED unscheduled", in: failedUnverified(),
			ev: lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictFailed, Reason: "no TXT record at _verify.example.com"},
			want: func(d *domains.Domain) {
				d.LastError = "ownership not proven before the verification deadline: no TXT record at _verify.example.com"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
			},
		},
		{
			name: "failed (unverified)/verify-now without an answer changes nothing but the check time", in: failedUnverified(),
			ev:   lifecycle.Event{Kind: lifecycle.EventOwnership, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) { d.Progress.LastCheckedAt = now },
		},
		{
			name: "failed (unverified)/pre-flight is not run before ownership", in: failedUnverified(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
		},

		// ACTIVE
		{
			name: "active/due writes the route first", in: active(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectWriteRoute,
		},
		{
			name: "active/route written, nothing else due: schedule the earliest work", in: active(),
			ev:   lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) { d.NextAttemptAt = now.Add(2 * time.Hour) },
		},
		{
			name: "active/route write failed retries soon", in: active(),
			ev: lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures = 1
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "active/re-verification due after the route", in: func() domains.Domain { d := active(); d.Progress.ReverifyAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictOK}, wantEffect: lifecycle.EffectReverify,
		},
		{
			name: "active/re-verified: next in a day, then the CA's window is due", in: func() domains.Domain {
				d := active()
				d.Progress.ReverifyAt = now
				d.Progress.RenewalInfoAt = now
				return d
			}(),
			ev:         lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictOK},
			want:       func(d *domains.Domain) { d.Progress.ReverifyAt, d.Progress.LastCheckedAt = now.Add(24*time.Hour), now },
			wantEffect: lifecycle.EffectCheckRenewalInfo,
		},
		{
			name: "active/re-verify definite failure counts, rechecks in an hour", in: func() domains.Domain { d := active(); d.Progress.ReverifyAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictFailed, Reason: "hostname resolves to 203.0.113.7, not to the edge"},
			want: func(d *domains.Domain) {
				d.LastError = "hostname resolves to 203.0.113.7, not to the edge"
				d.Progress.ReverifyFailures, d.Progress.LastCheckedAt = 1, now
				d.Progress.ReverifyAt = now.Add(time.Hour)
				d.NextAttemptAt = now.Add(time.Hour)
			},
		},
		{
			name: "active/re-verify indeterminate never counts", in: func() domains.Domain {
				d := active()
				d.Progress.ReverifyAt = now
				d.Progress.ReverifyFailures = 2
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.Progress.ReverifyAt = now.Add(30 * time.Second)
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "active/third consecutive definite failure makes it MOVED, renewal stops", in: func() domains.Domain {
				d := active()
				d.Progress.ReverifyAt = now
				d.Progress.ReverifyFailures = 2
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictFailed, Reason: "hostname resolves to 203.0.113.7, not to the edge"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusMoved
				d.LastError = "moved: hostname resolves to 203.0.113.7, not to the edge"
				d.Progress.ReverifyFailures, d.Progress.LastCheckedAt, d.Progress.MovedAt = 3, now, now
				d.NextAttemptAt = now.Add(24 * time.Hour)
			},
		},
		{
			name: "active/re-verified after failures clears the error", in: func() domains.Domain {
				d := active()
				d.Progress.ReverifyAt, d.Progress.ReverifyFailures, d.LastError = now, 2, "hostname resolves elsewhere"
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.LastError = ""
				d.Progress.ReverifyFailures, d.Progress.LastCheckedAt = 0, now
				d.Progress.ReverifyAt = now.Add(24 * time.Hour)
				d.NextAttemptAt = now.Add(3 * time.Hour)
			},
		},
		{
			name: "active/ARI window still holds the chosen time: keep it", in: func() domains.Domain { d := active(); d.Progress.RenewalInfoAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictOK, Window: lifecycle.Window{Start: now.Add(4 * 24 * time.Hour), End: now.Add(6 * 24 * time.Hour)}},
			want: func(d *domains.Domain) {
				d.Progress.RenewalInfoAt = now.Add(6 * time.Hour)
				d.NextAttemptAt = now.Add(2 * time.Hour)
			},
		},
		{
			name: "active/ARI window moved into the past: renew now (pre-flight first)", in: func() domains.Domain { d := active(); d.Progress.RenewalInfoAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictOK, RetryAfter: time.Hour, Draw: 0.5,
				Window: lifecycle.Window{Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour)}},
			want: func(d *domains.Domain) {
				d.Progress.RenewAt = now.Add(-90 * time.Minute)
				d.Progress.RenewalInfoAt = now.Add(time.Hour)
			},
			wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "active/CA without ARI: the lifetime rule stands", in: func() domains.Domain { d := active(); d.Progress.RenewalInfoAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventRenewalInfo, NoRenewalInfo: true},
			want: func(d *domains.Domain) {
				d.Progress.RenewalInfoAt = time.Time{}
				d.NextAttemptAt = now.Add(2 * time.Hour)
			},
		},
		{
			name: "active/ARI unreachable: ask again later, keep the renewal time", in: func() domains.Domain { d := active(); d.Progress.RenewalInfoAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventRenewalInfo, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.RenewalInfoAt = now.Add(30 * time.Second)
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "active/renewal due (a third of the lifetime left) runs pre-flight", in: func() domains.Domain {
				d := active()
				d.Progress.RenewAt = now
				d.Progress.RenewalInfoAt = time.Time{}
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictOK}, wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "active/pre-flight passed persists RENEWING before the order", in: func() domains.Domain { d := active(); d.Progress.RenewAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusRenewing
				d.Progress.OrderStartedAt, d.Progress.LastCheckedAt = now, now
				d.NextAttemptAt = now.Add(2 * time.Minute)
			},
			wantEffect: lifecycle.EffectRenew,
		},
		{
			name: "active/renewal pre-flight refused keeps serving, retries on the schedule", in: func() domains.Domain { d := active(); d.Progress.RenewAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictFailed, Reason: "pre-flight CAA: r"},
			want: func(d *domains.Domain) {
				d.LastError = "pre-flight CAA: r"
				d.Progress.Failures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(time.Minute)
			},
		},
		{
			name: "active/renewal pre-flight indeterminate retries soon", in: func() domains.Domain { d := active(); d.Progress.RenewAt = now; return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "active (covered)/due checks the wildcard", in: covered(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectCheckCover,
		},
		{
			name: "active (covered)/wildcard still serves: write the route", in: covered(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictOK, CoveredBy: "*.example.com"}, wantEffect: lifecycle.EffectWriteRoute,
		},
		{
			name: "active (covered)/no renewal of its own", in: func() domains.Domain { d := covered(); d.Progress.RenewAt = now; return d }(),
			ev:   lifecycle.Event{Kind: lifecycle.EventRouteWritten, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) { d.NextAttemptAt = now.Add(2 * time.Hour) },
		},
		{
			name: "active (covered)/wildcard gone: get a certificate of its own", in: covered(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictFailed},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusVerified
				d.CoveredBy = ""
				d.NextAttemptAt = now
			},
			wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "active (covered)/cover check indeterminate retries", in: covered(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures = 1
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},

		// RENEWING
		{
			name: "renewing/due (holder gone) runs pre-flight again", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectPreflight,
		},
		{
			name: "renewing/pre-flight passed restarts the renewal", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Progress.OrderStartedAt, d.Progress.LastCheckedAt = now, now
				d.NextAttemptAt = now.Add(2 * time.Minute)
			},
			wantEffect: lifecycle.EffectRenew,
		},
		{
			name: "renewing/renewed: ACTIVE with the new certificate, re-verification kept", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassNone, Certificate: newCert, RenewAt: now.Add(60 * 24 * time.Hour)},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.Certificate = newCert
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.RenewAt = now.Add(60 * 24 * time.Hour)
				d.Progress.RenewalInfoAt = time.Time{}
				d.NextAttemptAt = now.Add(2 * time.Hour)
			},
		},
		{
			name: "renewing/terminal error: back to ACTIVE (old certificate serves), schedule", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTerminal, Reason: "the CA refused the order (rejectedIdentifier)"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.LastError = "the CA refused the order (rejectedIdentifier)"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.Failures = 1
				d.NextAttemptAt = now.Add(time.Minute)
			},
		},
		{
			name: "renewing/rate limited: back to ACTIVE, retry after the CA's time", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassRateLimited, RetryAfter: 5 * time.Hour, Reason: "the CA's rate limit was reached"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.LastError = "the CA's rate limit was reached"
				d.Progress.OrderStartedAt = time.Time{}
				d.NextAttemptAt = now.Add(2 * time.Hour) // re-verification comes first
			},
		},
		{
			name: "renewing/transient: back to ACTIVE, retry soon", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassTransient, Reason: "the CA could not be reached"},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.LastError = "the CA could not be reached"
				d.Progress.OrderStartedAt = time.Time{}
				d.Progress.TransientFailures = 1
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "renewing/lost writes nothing", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassLost},
		},
		{
			name: "renewing/pre-flight indeterminate: back to ACTIVE", in: renewing(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},

		// MOVED
		{
			name: "moved/due within the grace period re-checks the edge", in: moved(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectReverify,
		},
		{
			name: "moved/back at the edge: ACTIVE again, route rewritten", in: moved(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictOK},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusActive
				d.LastError = ""
				d.Progress.MovedAt = time.Time{}
				d.Progress.ReverifyFailures = 0
				d.Progress.LastCheckedAt = now
				d.Progress.ReverifyAt = now.Add(24 * time.Hour)
			},
			wantEffect: lifecycle.EffectWriteRoute,
		},
		{
			name: "moved/still elsewhere: check again tomorrow", in: moved(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictFailed, Reason: "hostname resolves to 203.0.113.7, not to the edge"},
			want: func(d *domains.Domain) {
				d.Progress.LastCheckedAt = now
				d.NextAttemptAt = now.Add(24 * time.Hour)
			},
		},
		{
			name: "moved/next check never passes the removal time", in: func() domains.Domain {
				d := moved()
				d.Progress.MovedAt = now.Add(-7*24*time.Hour + time.Hour)
				return d
			}(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictFailed, Reason: "hostname resolves to 203.0.113.7, not to the edge"},
			want: func(d *domains.Domain) {
				d.Progress.LastCheckedAt = now
				d.NextAttemptAt = now.Add(time.Hour)
			},
		},
		{
			name: "moved/indeterminate retries", in: moved(),
			ev: lifecycle.Event{Kind: lifecycle.EventReverify, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures, d.Progress.LastCheckedAt = 1, now
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "moved/grace period over: DELETING, then cleanup", in: func() domains.Domain { d := moved(); d.Progress.MovedAt = now.Add(-7 * 24 * time.Hour); return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue},
			want: func(d *domains.Domain) {
				d.Status = domains.StatusDeleting
				d.LastError = "removed: the domain stopped pointing at the edge and the grace period ended"
				d.NextAttemptAt = now
			},
			wantEffect: lifecycle.EffectCleanup,
		},
		{
			name: "moved/no renewal even when due", in: func() domains.Domain { d := moved(); d.Progress.RenewAt = now.Add(-time.Hour); return d }(),
			ev: lifecycle.Event{Kind: lifecycle.EventPreflight, Verdict: lifecycle.VerdictOK},
		},

		// DELETING
		{
			name: "deleting/due cleans up", in: deleting(),
			ev: lifecycle.Event{Kind: lifecycle.EventDue}, wantEffect: lifecycle.EffectCleanup,
		},
		{
			name: "deleting/cleaned up: delete the record", in: deleting(),
			ev: lifecycle.Event{Kind: lifecycle.EventCleanedUp, Verdict: lifecycle.VerdictOK}, wantEffect: lifecycle.EffectDelete,
		},
		{
			name: "deleting/certstore unreachable: retry", in: deleting(),
			ev: lifecycle.Event{Kind: lifecycle.EventCleanedUp, Verdict: lifecycle.VerdictIndeterminate},
			want: func(d *domains.Domain) {
				d.Progress.TransientFailures = 1
				d.NextAttemptAt = now.Add(30 * time.Second)
			},
		},
		{
			name: "deleting/never covered by a wildcard any more", in: deleting(),
			ev: lifecycle.Event{Kind: lifecycle.EventCover, Verdict: lifecycle.VerdictOK, CoveredBy: "*.example.com"},
		},
		{
			name: "deleting/a late order outcome is ignored", in: deleting(),
			ev: lifecycle.Event{Kind: lifecycle.EventOrder, Class: lifecycle.ClassNone, Certificate: newCert},
		},

		// Unknown state
		{
			name: "unknown state is left alone and unscheduled", in: func() domains.Domain { d := pending(); d.Status = 0; return d }(),
			ev:   lifecycle.Event{Kind: lifecycle.EventDue},
			want: func(d *domains.Domain) { d.NextAttemptAt = time.Time{} },
		},
	}
	opts := cmp.Options{cmpopts.EquateEmpty()}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lifecycle.Next(tc.in, tc.ev, now, policy)
			want := tc.in
			if tc.want != nil {
				tc.want(&want)
			}
			if diff := cmp.Diff(want, got.Domain, opts); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
			if got.Write != (tc.want != nil) {
				t.Errorf("Write = %v, want %v", got.Write, tc.want != nil)
			}
			if got.Effect != tc.wantEffect {
				t.Errorf("Effect = %v, want %v", got.Effect, tc.wantEffect)
			}
		})
	}
}

// TestEveryStateAndEvent runs every event against every state: Next must never panic,
// must never schedule work in the past, and must never change a domain's identity.
func TestEveryStateAndEvent(t *testing.T) {
	states := map[string]domains.Domain{
		"pending": pending(), "verified": verified(), "issuing": issuing(), "failed-verified": failedVerified(),
		"failed-unverified": failedUnverified(), "active": active(), "covered": covered(), "renewing": renewing(),
		"moved": moved(), "deleting": deleting(),
	}
	kinds := []lifecycle.EventKind{lifecycle.EventDue, lifecycle.EventVerifyNow, lifecycle.EventOwnership, lifecycle.EventPreflight,
		lifecycle.EventOrder, lifecycle.EventRenewalInfo, lifecycle.EventReverify, lifecycle.EventRouteWritten, lifecycle.EventCover, lifecycle.EventCleanedUp}
	verdicts := []lifecycle.Verdict{lifecycle.VerdictOK, lifecycle.VerdictFailed, lifecycle.VerdictIndeterminate}
	classes := []lifecycle.Class{lifecycle.ClassNone, lifecycle.ClassTransient, lifecycle.ClassRateLimited, lifecycle.ClassTerminal, lifecycle.ClassLost}
	for name, d := range states {
		for _, k := range kinds {
			for _, v := range verdicts {
				for _, c := range classes {
					ev := lifecycle.Event{Kind: k, Verdict: v, Class: c, Reason: "r", CoveredBy: "*.example.com",
						Window: lifecycle.Window{Start: now, End: now.Add(time.Hour)}, Certificate: cert, RenewAt: now.Add(time.Hour)}
					got := lifecycle.Next(d, ev, now, policy)
					if got.Domain.Hostname != d.Hostname || got.Domain.TenantID != d.TenantID || got.Domain.Version != d.Version {
						t.Errorf("%s/%d/%d/%d changed the identity or version", name, k, v, c)
					}
					if got.Write && !got.Domain.NextAttemptAt.IsZero() && got.Domain.NextAttemptAt.Before(now) {
						t.Errorf("%s/%d/%d/%d scheduled %v, in the past", name, k, v, c, got.Domain.NextAttemptAt)
					}
					if got.Effect == lifecycle.EffectNone && got.Domain.Status != domains.StatusFailed && got.Domain.NextAttemptAt.IsZero() && got.Write {
						t.Errorf("%s/%d/%d/%d wrote a %v domain with nothing scheduled", name, k, v, c, got.Domain.Status)
					}
				}
			}
		}
	}
}

func TestFailureDelay(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{{1, time.Minute}, {2, 10 * time.Minute}, {3, 100 * time.Minute}, {4, 24 * time.Hour}, {40, 24 * time.Hour}}
	for _, tc := range tests {
		if got := lifecycle.FailureDelay(tc.n); got != tc.want {
			t.Errorf("FailureDelay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestRenewTime(t *testing.T) {
	tests := []struct {
		name          string
		from, to      time.Time
		window        *lifecycle.Window
		draw          float64
		want          time.Time
		wantNotBefore time.Time
	}{
		{name: "90 days: a third left", from: now, to: now.Add(90 * 24 * time.Hour), want: now.Add(60 * 24 * time.Hour)},
		{name: "90 days: jitter renews up to 4.5 days earlier", from: now, to: now.Add(90 * 24 * time.Hour), draw: 1, want: now.Add(60*24*time.Hour - 108*time.Hour)},
		{name: "6 days: half left", from: now, to: now.Add(6 * 24 * time.Hour), want: now.Add(3 * 24 * time.Hour)},
		{name: "5 minutes: half left", from: now, to: now.Add(5 * time.Minute), want: now.Add(150 * time.Second)},
		{name: "ARI window wins", from: now, to: now.Add(90 * 24 * time.Hour), window: &lifecycle.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}, draw: 0.5, want: now.Add(2 * time.Hour)},
		{name: "an empty ARI window is ignored", from: now, to: now.Add(90 * 24 * time.Hour), window: &lifecycle.Window{Start: now, End: now}, want: now.Add(60 * 24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lifecycle.RenewTime(tc.from, tc.to, tc.window, tc.draw); !got.Equal(tc.want) {
				t.Errorf("RenewTime = %v, want %v", got, tc.want)
			}
		})
	}
}
