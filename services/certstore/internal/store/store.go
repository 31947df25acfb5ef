// Package store is certstore's record storage: certificate records, routes and the
// expiry index, behind one interface with a written contract. Implementations live in
// sub-packages (memstore, redisstore, dynamostore) and all run the one contract suite
// in storetest.
//
// The interface carries no Redis (or other backend) types. Private keys are not stored
// here in the clear: a record holds an opaque KeyRef produced by the secrets backend
// (the envelope ciphertext for the local backend, a secret name for AWS).
//
// # Contract
//
//   - Names are normalized hostnames or wildcards (`*.example.com`), as produced by
//     pkg/hostname; the store does not re-validate them.
//   - Not found: GetCertificate, GetRoute, DeleteCertificate and DeleteRoute return an
//     error matching ErrNotFound (errors.Is) when nothing is stored under the name.
//   - Fencing: PutCertificate and DeleteCertificate refuse a fencing token lower than the
//     stored one with ErrStaleFencing and change nothing. An equal token is accepted (a
//     writer may retry), a higher one replaces the stored token. The token survives a
//     DeleteCertificate for TombstoneTTL, so a writer whose lease lapsed cannot recreate
//     a certificate that a newer writer deleted.
//   - Versions: PutCertificate assigns the next version, one more than any version ever
//     stored under the name (including a deleted one, within TombstoneTTL), and returns it.
//   - Atomicity: a PutCertificate replaces chain, key reference, times, version and token
//     in one step. A reader sees either the whole old record or the whole new one, never a
//     mix, so a chain is never paired with another certificate's key reference.
//     SwapKeyRef is a compare-and-swap on (version, key reference).
//   - The expiry index is written after the record switch, as a separate step, and may
//     lag or lead the record after a crash. ListDue therefore re-checks every candidate
//     against its record, repairs the index entry, and returns only records whose stored
//     renew time is before the bound, so it never returns a name that is not due nor a
//     deleted one. Every stored certificate is in the index with a score no later than
//     its renew time (the index entry is lowered before the switch), so nothing due is
//     missed.
//   - Concurrency: every method is safe for concurrent use, from many goroutines and many
//     processes sharing the backend.
//   - Context: every method honours cancellation and deadlines; a cancelled call returns
//     an error wrapping ctx.Err(). A write interrupted this way may or may not have taken
//     effect, and retrying it is safe (same token, same content).
//   - Times are kept to the millisecond (truncated).
//   - Returned values are copies: callers may keep and modify them.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotFound: nothing is stored under the name.
	ErrNotFound = errors.New("not found")
	// ErrStaleFencing: the writer's fencing token is lower than the stored one.
	ErrStaleFencing = errors.New("fencing token is lower than the stored one")
	// ErrConflict: a compare-and-swap found the record changed.
	ErrConflict = errors.New("record changed concurrently")
)

// TombstoneTTL is how long the fencing token and last version of a deleted certificate
// are kept.
const TombstoneTTL = 30 * 24 * time.Hour

// Certificate is one certificate record.
type Certificate struct {
	// Name is the hostname or wildcard the certificate is stored under.
	Name string
	// Chain is the DER chain, leaf first.
	Chain [][]byte
	// KeyRef is the secrets backend's reference to the private key.
	KeyRef []byte
	// NotAfter is the leaf's expiry.
	NotAfter time.Time
	// RenewTime is when renewal is due; it scores the expiry index.
	RenewTime time.Time
	// Version is assigned by PutCertificate.
	Version int64
	// FencingToken is the token of the writer that stored this version.
	FencingToken int64
}

// Route is where a hostname's traffic goes.
type Route struct {
	Hostname      string
	TenantID      string
	Upstream      string
	RedirectHTTPS bool
}

// Serving is what is stored under one name for serving it.
type Serving struct {
	// Certificate is nil when none is stored.
	Certificate *Certificate
	// Route is nil when none is stored.
	Route *Route
}

// Due is an entry of ListDue.
type Due struct {
	Name      string
	Version   int64
	NotAfter  time.Time
	RenewTime time.Time
}

// MaxPageSize bounds ListDue pages.
const MaxPageSize = 1000

// Store is the record storage. See the package documentation for the contract.
type Store interface {
	// GetCertificate returns the record stored under name, or ErrNotFound.
	GetCertificate(ctx context.Context, name string) (Certificate, error)
	// PutCertificate stores c (c.Version is ignored) as the next version and returns the
	// stored record and the key reference it replaced (nil when there was none), which the
	// caller removes from the secrets backend. ErrStaleFencing when c.FencingToken is
	// lower than the stored token.
	PutCertificate(ctx context.Context, c Certificate) (stored Certificate, replacedKeyRef []byte, err error)
	// DeleteCertificate removes the record under name and returns its key reference.
	// ErrNotFound when none is stored, ErrStaleFencing as in PutCertificate.
	DeleteCertificate(ctx context.Context, name string, fencingToken int64) (removedKeyRef []byte, err error)
	// SwapKeyRef replaces the key reference of the record under name when it still has
	// version and oldRef (a re-wrap of the same key under a new key-encryption key).
	// ErrConflict when the record changed, ErrNotFound when it is gone.
	SwapKeyRef(ctx context.Context, name string, version int64, oldRef, newRef []byte) error

	// GetServing returns the certificate and the route stored under name together, in
	// one round trip where the backend allows (Lookup's hot path). A missing record is
	// nil, not an error. Each record is read atomically; the two are not a snapshot of
	// each other.
	GetServing(ctx context.Context, name string) (Serving, error)

	// GetRoute returns the route of name, or ErrNotFound.
	GetRoute(ctx context.Context, name string) (Route, error)
	// SetRoute creates or replaces the route of r.Hostname.
	SetRoute(ctx context.Context, r Route) error
	// DeleteRoute removes the route of name; ErrNotFound when there is none.
	DeleteRoute(ctx context.Context, name string) error

	// ListDue returns certificates whose renew time is before the bound, ordered by renew
	// time then name, at most pageSize (1 to MaxPageSize) per page. pageToken is empty for
	// the first page and the returned next token for the following ones; next is empty on
	// the last page. A token is opaque and stays valid while the bound is the same.
	ListDue(ctx context.Context, before time.Time, pageSize int, pageToken string) (due []Due, next string, err error)
}

// ErrBadPageToken: a ListDue token that this store did not make.
var ErrBadPageToken = errors.New("malformed page token")
