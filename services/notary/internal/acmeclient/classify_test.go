package acmeclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"

	"github.com/portico-dev/portico/services/notary/internal/acmeclient"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

func problem(typ string, status int, detail string) *acme.ProblemDetails {
	return &acme.ProblemDetails{Type: typ, HTTPStatus: status, Detail: detail, Instance: "https://ca/req/" + detail}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantClass lifecycle.Class
		wantRetry time.Duration
		wantLabel string
	}{
		{"rate limited with Retry-After", fmt.Errorf("order: %w", &acme.RateLimitedError{ProblemDetails: problem(acme.RateLimitedErrorType, 429, "x"), RetryAfter: 3 * time.Hour}), lifecycle.ClassRateLimited, 3 * time.Hour, "rate_limited"},
		{"rate limited problem without 429", problem(acme.RateLimitedErrorType, 403, "x"), lifecycle.ClassRateLimited, 0, "rate_limited"},
		{"badNonce after lego's retries", &acme.NonceError{ProblemDetails: problem(acme.BadNonceErrorType, 400, "x")}, lifecycle.ClassTransient, 0, "nonce"},
		{"5xx", problem("urn:ietf:params:acme:error:malformed", 503, "x"), lifecycle.ClassTransient, 0, "server_error"},
		{"serverInternal", problem(acme.ServerInternalErrorType, 500, "x"), lifecycle.ClassTransient, 0, "server_error"},
		{"connection refused", &url.Error{Op: "Post", URL: "https://ca/", Err: syscall.ECONNREFUSED}, lifecycle.ClassTransient, 0, "network"},
		{"timeout", fmt.Errorf("acme: %w", context.DeadlineExceeded), lifecycle.ClassTransient, 0, "timeout"},
		{"validation failed (connection), inside a joined error", errors.Join(fmt.Errorf("shop.example.com: invalid challenge: %w", problem(acme.ConnectionErrorType, 400, "dial tcp 1.2.3.4:80"))), lifecycle.ClassTerminal, 0, "connection"},
		{"CAA refused by the CA", problem(acme.CaaErrorType, 403, "x"), lifecycle.ClassTerminal, 0, "caa"},
		{"compound takes its first subproblem", &acme.ProblemDetails{Type: acme.CompoundErrorType, HTTPStatus: 403, SubProblems: []acme.SubProblem{{Type: acme.RejectedIdentifierErrorType}}}, lifecycle.ClassTerminal, 0, "rejectedIdentifier"},
		{"unknown problem type", problem("urn:ietf:params:acme:error:somethingNew", 403, "x"), lifecycle.ClassTerminal, 0, "other"},
		{"unrecognised error", errors.New("order identifiers have been modified"), lifecycle.ClassTerminal, 0, "other"},
		{"cancelled: lease lost or stopping", fmt.Errorf("obtain: %w", context.Canceled), lifecycle.ClassLost, 0, "lost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := acmeclient.Classify(tc.err)
			if got.Class != tc.wantClass || got.RetryAfter != tc.wantRetry || got.Label != tc.wantLabel {
				t.Fatalf("Classify = %+v, want class %v retry %v label %q", got, tc.wantClass, tc.wantRetry, tc.wantLabel)
			}
			if got.Class != lifecycle.ClassLost && got.Reason == "" {
				t.Fatal("no reason")
			}
		})
	}
}

// TestClassifyReasonIsStable: two failures that differ only in request-specific detail
// (instance URL, addresses, tokens) give the same LastError, so retries do not rewrite it.
func TestClassifyReasonIsStable(t *testing.T) {
	for _, typ := range []string{acme.ConnectionErrorType, acme.IncorrectResponseErrorType, acme.UnauthorizedErrorType, "urn:ietf:params:acme:error:new", acme.ServerInternalErrorType} {
		a := acmeclient.Classify(problem(typ, 403, "request 1 token abc at 10:01"))
		b := acmeclient.Classify(problem(typ, 403, "request 2 token xyz at 10:02"))
		if a.Reason != b.Reason {
			t.Errorf("%s: reasons differ: %q vs %q", typ, a.Reason, b.Reason)
		}
	}
}
