// Package domains is the shared model of tenants and their custom domains, and the
// storage contract that controlapi and the notary both work through.
//
// controlapi creates tenants and domains and changes their settings; the notary moves
// domains through their lifecycle (docs/lifecycle.md). Both write the same records, so every
// write is a compare-and-swap on the record's Version: a writer that read a stale copy gets
// ErrConflict and must re-read. Work is handed to the notary through the records themselves:
// a domain whose NextAttemptAt has come is listed by DueDomains, so nothing is lost while the
// notary is down.
//
// Implementations live in sub-packages (memstore, redisstore, dynamostore) and all pass
// the contract suite in storetest.
package domains

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors every Store returns (wrapped or bare; test with errors.Is).
var (
	// ErrNotFound: no such tenant, domain or key.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the tenant ID or the hostname is already held.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the record changed since it was read (Version mismatch).
	ErrConflict = errors.New("version conflict")
)

// Status is a domain's lifecycle state. The numbers are those of
// portico.control.v1.DomainStatus.
type Status uint8

// The lifecycle states.
const (
	StatusPendingVerification Status = 1
	StatusVerified            Status = 2
	StatusIssuing             Status = 3
	StatusActive              Status = 4
	StatusRenewing            Status = 5
	StatusFailed              Status = 6
	StatusMoved               Status = 7
	StatusDeleting            Status = 8
)

var statusNames = map[Status]string{
	StatusPendingVerification: "PENDING_VERIFICATION",
	StatusVerified:            "VERIFIED",
	StatusIssuing:             "ISSUING",
	StatusActive:              "ACTIVE",
	StatusRenewing:            "RENEWING",
	StatusFailed:              "FAILED",
	StatusMoved:               "MOVED",
	StatusDeleting:            "DELETING",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Valid reports whether s is one of the lifecycle states.
func (s Status) Valid() bool { _, ok := statusNames[s]; return ok }

// AllStatuses lists the states in lifecycle order.
func AllStatuses() []Status {
	return []Status{StatusPendingVerification, StatusVerified, StatusIssuing, StatusActive,
		StatusRenewing, StatusFailed, StatusMoved, StatusDeleting}
}

// Kind is what a domain covers. The numbers are those of portico.control.v1.DomainKind.
type Kind uint8

// The kinds.
const (
	// KindExact is one hostname.
	KindExact Kind = 1
	// KindWildcard is `*.example.com`: every one-label subdomain.
	KindWildcard Kind = 2
	// KindApexAndWildcard is `example.com` and every one-label subdomain, on one certificate.
	KindApexAndWildcard Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindExact:
		return "EXACT"
	case KindWildcard:
		return "WILDCARD"
	case KindApexAndWildcard:
		return "APEX_AND_WILDCARD"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Tenant is a customer account of the platform.
type Tenant struct {
	// ID: lowercase letters, digits and hyphens.
	ID          string
	DisplayName string
	// KeyHash identifies the tenant's current API key (a hash; the key itself is never
	// stored). Unique across tenants.
	KeyHash      string
	CreatedAt    time.Time
	KeyRotatedAt time.Time
}

// CertificateInfo describes the certificate currently served for a domain.
type CertificateInfo struct {
	Issuer    string
	Serial    string
	NotBefore time.Time
	NotAfter  time.Time
	DNSNames  []string
}

// Progress is the notary's working state of a domain, persisted with it so that any
// replica can pick the work up where another stopped.
type Progress struct {
	// OrderURL is the ACME order in flight, if any.
	OrderURL string
	// Failures counts consecutive failed attempts of the current step.
	Failures int
	// ReverifyFailures counts consecutive definite failures of the daily check that an
	// active domain still points at the edge.
	ReverifyFailures int
	// LastCheckedAt is when the notary last looked at the domain.
	LastCheckedAt time.Time
	// MovedAt is when the domain was found no longer pointing at the edge.
	MovedAt time.Time
	// TransientFailures counts consecutive attempts that ended indeterminate or with a
	// transient error (DNS timeouts, an unreachable CA); it spaces retries and is reset by
	// any definite answer.
	TransientFailures int
	// OrderStartedAt is when the order in flight (ISSUING or RENEWING) was started.
	OrderStartedAt time.Time
	// RenewAt is when the current certificate is due for renewal (from the CA's renewal
	// information, or a share of its lifetime); zero without a certificate of its own.
	RenewAt time.Time
	// RenewalInfoAt is when the CA's renewal information (ARI, RFC 9773) is next fetched;
	// zero when the CA offers none.
	RenewalInfoAt time.Time
	// ReverifyAt is when an active domain is next checked to still point at the edge.
	ReverifyAt time.Time
}

// Domain is a hostname claimed by a tenant.
type Domain struct {
	// Hostname is normalized by pkg/hostname; `*.example.com` for KindWildcard. It is the
	// key: at most one domain per hostname, across all tenants.
	Hostname string
	TenantID string
	Kind     Kind
	// RegisteredDomain is the eTLD+1 the ownership TXT record sits under.
	RegisteredDomain string
	Status           Status
	// VerificationToken is the value expected in the TXT record at
	// `_verify.<RegisteredDomain>`.
	VerificationToken string
	// DelegationLabel is, for wildcard kinds, the label in the platform's delegation zone
	// that `_acme-challenge.<domain>` must CNAME to.
	DelegationLabel string
	// RedirectHTTPS sends plain HTTP to HTTPS with a 308.
	RedirectHTTPS bool
	// Upstream overrides the platform's default upstream (host:port); empty for the default.
	Upstream string
	// CoveredBy is the name of a wildcard certificate of the same tenant that serves this
	// domain, when there is one.
	CoveredBy string
	// LastError says, in stable words, why the last step failed; empty after a success.
	LastError string
	// NextAttemptAt is when the notary next works on the domain; zero when nothing is
	// scheduled. DueDomains lists by it.
	NextAttemptAt time.Time
	// VerifyDeadline is when ownership verification stops being retried.
	VerifyDeadline time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// VerifiedAt is when ownership was proven; zero before.
	VerifiedAt time.Time
	// Certificate is the certificate served; zero before the first one.
	Certificate CertificateInfo
	// Progress is the notary's working state.
	Progress Progress
	// Version increases by one with every successful write; writes compare it.
	Version int64
}

// ListQuery selects a page of domains ordered by hostname.
type ListQuery struct {
	// TenantID restricts to one tenant; empty lists every tenant's domains.
	TenantID string
	// Status restricts to one state; zero means all.
	Status Status
	// After is the last hostname of the previous page; empty starts at the beginning.
	After string
	// Limit is the page size (at least 1).
	Limit int
}

// TenantStore keeps tenants and resolves API keys.
//
// All methods are safe for concurrent use, honour ctx (a cancelled ctx returns its error,
// and a write either happened entirely or not at all) and return the sentinels above.
type TenantStore interface {
	// CreateTenant stores a new tenant. ErrAlreadyExists when the ID is taken.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant returns a tenant by ID, or ErrNotFound.
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// TenantByKeyHash resolves an API key hash, or ErrNotFound.
	TenantByKeyHash(ctx context.Context, keyHash string) (Tenant, error)
	// ListTenants returns up to limit tenants with IDs greater than after, by ID.
	ListTenants(ctx context.Context, after string, limit int) ([]Tenant, error)
	// RotateTenantKey replaces the tenant's key hash atomically: from the moment it
	// returns, the old hash resolves to nothing and the new one to the tenant.
	RotateTenantKey(ctx context.Context, id, newKeyHash string, at time.Time) (Tenant, error)
	// DeleteTenant removes the tenant, its key and its verification tokens (a later tenant
	// given the same ID must not inherit ownership proofs). Its domains are not touched:
	// the caller moves them to DELETING first. ErrNotFound when missing.
	DeleteTenant(ctx context.Context, id string) error
}

// DomainStore keeps domains with their indexes (by tenant, by status, by next attempt).
//
// Every write is atomic with its index changes, and concurrency-safe across processes:
// two CreateDomain calls for one hostname never both succeed, and UpdateDomain/DeleteDomain
// succeed only against the version they were given. Same ctx and error rules as TenantStore.
type DomainStore interface {
	// CreateDomain stores d with Version 1 and returns it. ErrAlreadyExists when any tenant
	// holds the hostname.
	CreateDomain(ctx context.Context, d Domain) (Domain, error)
	// GetDomain returns a domain by hostname, or ErrNotFound.
	GetDomain(ctx context.Context, hostname string) (Domain, error)
	// UpdateDomain replaces the stored domain when its Version equals d.Version and returns
	// it with Version+1. ErrConflict on a version mismatch, ErrNotFound when missing. The
	// hostname and tenant cannot change (ErrConflict).
	UpdateDomain(ctx context.Context, d Domain) (Domain, error)
	// DeleteDomain removes the domain when its version equals version. ErrConflict on a
	// mismatch, ErrNotFound when missing.
	DeleteDomain(ctx context.Context, hostname string, version int64) error
	// ListDomains returns a page in hostname order (see ListQuery).
	ListDomains(ctx context.Context, q ListQuery) ([]Domain, error)
	// DueDomains returns up to limit hostnames whose NextAttemptAt is not after before,
	// earliest first (ties in hostname order). Its cost follows what is due.
	DueDomains(ctx context.Context, before time.Time, limit int) ([]string, error)
	// VerificationToken returns the ownership token of (tenantID, registeredDomain),
	// storing candidate first when there is none yet, atomically: concurrent callers all
	// get the same token. Tokens go away with DeleteTenant.
	VerificationToken(ctx context.Context, tenantID, registeredDomain, candidate string) (string, error)
}

// Store is everything controlapi and the notary keep.
type Store interface {
	TenantStore
	DomainStore
}

// fencingEpochShift makes room below a domain's creation time for its versions.
const fencingEpochShift = 20

// FencingToken is the token every certstore write for d carries (the notary's puts and
// deletes, controlapi's deletes): it grows with d's Version, and a record created later
// (a hostname deleted and claimed again) starts above every token of the earlier one,
// because its creation time in milliseconds fills the high bits. certstore keeps a
// deleted certificate's token for a while, so a token that restarted at 1 with a
// re-created record would be refused. Tokens exceed 2^53: stores compare them exactly.
func (d Domain) FencingToken() int64 {
	var epoch int64
	if !d.CreatedAt.IsZero() && d.CreatedAt.UnixMilli() > 0 {
		epoch = d.CreatedAt.UnixMilli() << fencingEpochShift
	}
	return epoch + d.Version
}

// OwnsFencingToken reports whether token was issued during d's lifetime (by this record,
// not by an earlier record of the same hostname).
func (d Domain) OwnsFencingToken(token int64) bool {
	return token >= Domain{CreatedAt: d.CreatedAt}.FencingToken()
}
