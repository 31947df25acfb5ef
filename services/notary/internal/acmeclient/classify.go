package acmeclient

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme"

	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// Outcome is a classified order failure.
type Outcome struct {
	Class lifecycle.Class
	// RetryAfter is the CA's wait, for ClassRateLimited.
	RetryAfter time.Duration
	// Reason is stable words for the domain's LastError: never a request id, a token, a
	// time or anything else that changes between two identical failures.
	Reason string
	// Label is a short metric label ("rate_limited", "connection", ...).
	Label string
}

// Classify sorts an error from Obtain, Renew or the account registration.
//
//   - Rate limits (HTTP 429 with urn:ietf:params:acme:error:rateLimited) carry the CA's
//     Retry-After, in seconds or as an HTTP date (lego turns both into a duration).
//   - Transient: the network, timeouts, 5xx and serverInternal, badNonce after lego's
//     own retries. Retried soon, backing off.
//   - Terminal: every other ACME problem (the CA refused, or validation failed) and
//     anything unrecognised: the failure schedule applies.
//   - A cancelled context means the lease was lost or the process is stopping: ClassLost,
//     nothing is written, the next holder redoes the step.
func Classify(err error) Outcome {
	if err == nil {
		return Outcome{Class: lifecycle.ClassNone}
	}
	if errors.Is(err, context.Canceled) {
		return Outcome{Class: lifecycle.ClassLost, Label: "lost"}
	}
	var rl *acme.RateLimitedError
	if errors.As(err, &rl) {
		return Outcome{Class: lifecycle.ClassRateLimited, RetryAfter: rl.RetryAfter, Label: "rate_limited",
			Reason: "the CA's rate limit was reached; the next attempt waits for the time the CA gave"}
	}
	var nonce *acme.NonceError
	if errors.As(err, &nonce) {
		return transient("nonce", "the CA kept rejecting request nonces (badNonce); retrying")
	}
	var pd *acme.ProblemDetails
	if errors.As(err, &pd) {
		return classifyProblem(pd)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return transient("timeout", "the CA did not answer in time; retrying")
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return transient("network", "the CA could not be reached; retrying")
	}
	if strings.Contains(err.Error(), "the server didn't respond to our request") {
		return transient("timeout", "the CA did not finish validating in time; retrying")
	}
	return Outcome{Class: lifecycle.ClassTerminal, Label: "other", Reason: "the order failed for a reason the notary does not recognise (see the notary's log)"}
}

func transient(label, reason string) Outcome {
	return Outcome{Class: lifecycle.ClassTransient, Label: label, Reason: reason}
}

// problemReasons are the stable words for ACME problem types (RFC 8555 section 6.7).
var problemReasons = map[string]string{
	acme.CaaErrorType:                     "the CA refused: CAA records forbid it to issue for this hostname (caa)",
	acme.ConnectionErrorType:              "the CA could not connect to the hostname to validate it (connection)",
	acme.DNSErrorType:                     "the CA could not resolve the hostname to validate it (dns)",
	acme.IncorrectResponseErrorType:       "the CA received a wrong answer to the HTTP-01 challenge (incorrectResponse)",
	acme.UnauthorizedErrorType:            "the CA refused the validation (unauthorized)",
	acme.RejectedIdentifierErrorType:      "the CA will not issue for this hostname (rejectedIdentifier)",
	acme.TLSErrorType:                     "the CA hit a TLS error while validating (tls)",
	acme.InvalidProfileErrorType:          "the CA does not offer the configured profile (invalidProfile)",
	acme.BadCSRErrorType:                  "the CA refused the certificate request (badCSR)",
	acme.AccountDoesNotExistErrorType:     "the CA does not know the notary's account (accountDoesNotExist)",
	acme.ExternalAccountRequiredErrorType: "the CA requires external account binding; set the EAB flags (externalAccountRequired)",
	acme.UserActionRequiredErrorType:      "the CA requires action on the account (userActionRequired)",
}

func classifyProblem(pd *acme.ProblemDetails) Outcome {
	short := strings.TrimPrefix(pd.Type, "urn:ietf:params:acme:error:")
	switch {
	case pd.Type == acme.RateLimitedErrorType:
		return Outcome{Class: lifecycle.ClassRateLimited, Label: "rate_limited",
			Reason: "the CA's rate limit was reached; the next attempt waits for the time the CA gave"}
	case pd.HTTPStatus >= 500 || pd.Type == acme.ServerInternalErrorType:
		return transient("server_error", "the CA answered with a server error; retrying")
	case pd.Type == acme.BadNonceErrorType:
		return transient("nonce", "the CA kept rejecting request nonces (badNonce); retrying")
	}
	// A compound problem is as good as its first subproblem.
	if pd.Type == acme.CompoundErrorType && len(pd.SubProblems) > 0 {
		return classifyProblem(&acme.ProblemDetails{Type: pd.SubProblems[0].Type, HTTPStatus: pd.HTTPStatus})
	}
	reason, known := problemReasons[pd.Type]
	if !known {
		reason = "the CA refused the order (" + short + ")"
		short = "other"
	}
	return Outcome{Class: lifecycle.ClassTerminal, Label: short, Reason: reason}
}
