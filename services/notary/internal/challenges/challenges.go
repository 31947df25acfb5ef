// Package challenges keeps the HTTP validation answers every notary replica serves, and
// serves them.
//
// When the notary orders a certificate, lego asks it to present an HTTP-01 token; the
// token and its key authorization go into a Store shared by all replicas (Redis), so the
// CA's request, which the gateway forwards to any notary replica, finds the answer.
//
// # Store contract
//
//   - Put stores an Entry under (Kind, Name) for ttl, replacing any entry there.
//   - Get returns the entry, or ErrNotFound when there is none or it expired.
//   - Delete removes it; deleting a missing entry is not an error.
//   - Every method honours ctx and is safe for concurrent use by many processes.
//
// Implementations: memchallenges, redischallenges and dynamochallenges, all running
// challengetest.
//
// # What the handler serves
//
// Exactly `/.well-known/acme-challenge/<token>` (token: base64url, 1 to 128 characters)
// and `/.well-known/pki-validation/<file>` (file: letters, digits, '.', '_', '-', 1 to
// 255 characters, not starting with '.'), GET or HEAD only, and only when the request's
// Host (a port stripped, normalized by pkg/hostname) is the domain the entry was stored
// for. Everything else is 404 (405 for another method on a valid path), so the handler
// answers nothing about names it is not validating. The notary stores only ACME entries;
// pki-validation files are served from the same store under their own kind, for CAs that
// validate by a file (CA/Browser Forum BR 3.2.2.4.18), but nothing writes them yet.
package challenges

import (
	"context"
	"errors"
	"time"
)

// Kind is the path family an entry is served under.
type Kind string

// The kinds.
const (
	// KindACME is /.well-known/acme-challenge/<token> (RFC 8555 HTTP-01).
	KindACME Kind = "acme-challenge"
	// KindPKIValidation is /.well-known/pki-validation/<file>.
	KindPKIValidation Kind = "pki-validation"
)

// ErrNotFound: no such entry (or it expired).
var ErrNotFound = errors.New("challenge not found")

// Entry is one answer.
type Entry struct {
	Kind Kind
	// Name is the token or file name.
	Name string
	// Host is the normalized hostname being validated; only requests for it are answered.
	Host string
	// Content is the body served (the key authorization for HTTP-01).
	Content string
}

// Store keeps entries. See the package documentation for the contract.
type Store interface {
	Put(ctx context.Context, e Entry, ttl time.Duration) error
	Get(ctx context.Context, kind Kind, name string) (Entry, error)
	Delete(ctx context.Context, kind Kind, name string) error
}
