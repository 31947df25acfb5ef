package dynamostore

import (
	"strconv"
	"time"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/dynamo"
)

// Sort keys and partition-key prefixes of the item kinds.
const (
	skTenant      = "tenant"
	skKey         = "key"
	skDomain      = "domain"
	skTokenPrefix = "token#"

	pkTenantPrefix = "tenant#"
	pkKeyPrefix    = "key#"
	pkDomainPrefix = "domain#"

	allTenants = "tenant" // all_pk of tenants
	allDomains = "domain" // all_pk of domains
	duePK      = "due"    // due_pk of scheduled domains
)

// domainItem is a domain as stored. Its attribute names are the storage format: rename a
// Go field freely, never a tag. The index attributes (all_pk, tenant_pk, status_pk,
// tenant_status_pk, name, due_pk, due_sk) are derived from the record on every write.
type domainItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`

	Hostname          string       `dynamodbav:"hostname,omitempty"`
	TenantID          string       `dynamodbav:"tenant_id,omitempty"`
	Kind              uint8        `dynamodbav:"kind,omitempty"`
	RegisteredDomain  string       `dynamodbav:"registered_domain,omitempty"`
	Status            uint8        `dynamodbav:"status,omitempty"`
	VerificationToken string       `dynamodbav:"verification_token,omitempty"`
	DelegationLabel   string       `dynamodbav:"delegation_label,omitempty"`
	RedirectHTTPS     bool         `dynamodbav:"redirect_https,omitempty"`
	Upstream          string       `dynamodbav:"upstream,omitempty"`
	CoveredBy         string       `dynamodbav:"covered_by,omitempty"`
	LastError         string       `dynamodbav:"last_error,omitempty"`
	NextAttemptAt     time.Time    `dynamodbav:"next_attempt_at,omitempty"`
	VerifyDeadline    time.Time    `dynamodbav:"verify_deadline,omitempty"`
	CreatedAt         time.Time    `dynamodbav:"created_at,omitempty"`
	UpdatedAt         time.Time    `dynamodbav:"updated_at,omitempty"`
	VerifiedAt        time.Time    `dynamodbav:"verified_at,omitempty"`
	Certificate       certItem     `dynamodbav:"certificate,omitempty"`
	Progress          progressItem `dynamodbav:"progress,omitempty"`
	Version           int64        `dynamodbav:"version"`

	AllPK          string `dynamodbav:"all_pk,omitempty"`
	Name           string `dynamodbav:"name,omitempty"`
	TenantPK       string `dynamodbav:"tenant_pk,omitempty"`
	StatusPK       string `dynamodbav:"status_pk,omitempty"`
	TenantStatusPK string `dynamodbav:"tenant_status_pk,omitempty"`
	DuePK          string `dynamodbav:"due_pk,omitempty"`
	DueSK          string `dynamodbav:"due_sk,omitempty"`
}

type certItem struct {
	Issuer    string    `dynamodbav:"issuer,omitempty"`
	Serial    string    `dynamodbav:"serial,omitempty"`
	NotBefore time.Time `dynamodbav:"not_before,omitempty"`
	NotAfter  time.Time `dynamodbav:"not_after,omitempty"`
	DNSNames  []string  `dynamodbav:"dns_names,omitempty"`
}

type progressItem struct {
	OrderURL          string    `dynamodbav:"order_url,omitempty"`
	Failures          int       `dynamodbav:"failures,omitempty"`
	ReverifyFailures  int       `dynamodbav:"reverify_failures,omitempty"`
	LastCheckedAt     time.Time `dynamodbav:"last_checked_at,omitempty"`
	MovedAt           time.Time `dynamodbav:"moved_at,omitempty"`
	TransientFailures int       `dynamodbav:"transient_failures,omitempty"`
	OrderStartedAt    time.Time `dynamodbav:"order_started_at,omitempty"`
	RenewAt           time.Time `dynamodbav:"renew_at,omitempty"`
	RenewalInfoAt     time.Time `dynamodbav:"renewal_info_at,omitempty"`
	ReverifyAt        time.Time `dynamodbav:"reverify_at,omitempty"`
}

func domainPK(host string) string { return pkDomainPrefix + host }
func tenantPK(id string) string   { return pkTenantPrefix + id }
func keyPK(hash string) string    { return pkKeyPrefix + hash }

func statusPK(s domains.Status) string { return strconv.Itoa(int(s)) }
func tenantStatusPK(tenant string, s domains.Status) string {
	return tenant + "#" + statusPK(s)
}

// dueSK orders the due index by next attempt (µs) then hostname.
func dueSK(t time.Time, host string) string { return dynamo.SortableMicros(t) + "#" + host }

func toItem(d domains.Domain) domainItem {
	it := domainItem{
		PK: domainPK(d.Hostname), SK: skDomain,
		Hostname:          d.Hostname,
		TenantID:          d.TenantID,
		Kind:              uint8(d.Kind),
		RegisteredDomain:  d.RegisteredDomain,
		Status:            uint8(d.Status),
		VerificationToken: d.VerificationToken,
		DelegationLabel:   d.DelegationLabel,
		RedirectHTTPS:     d.RedirectHTTPS,
		Upstream:          d.Upstream,
		CoveredBy:         d.CoveredBy,
		LastError:         d.LastError,
		NextAttemptAt:     d.NextAttemptAt,
		VerifyDeadline:    d.VerifyDeadline,
		CreatedAt:         d.CreatedAt,
		UpdatedAt:         d.UpdatedAt,
		VerifiedAt:        d.VerifiedAt,
		Certificate: certItem{
			Issuer:    d.Certificate.Issuer,
			Serial:    d.Certificate.Serial,
			NotBefore: d.Certificate.NotBefore,
			NotAfter:  d.Certificate.NotAfter,
			DNSNames:  d.Certificate.DNSNames,
		},
		Progress: progressItem{
			OrderURL:          d.Progress.OrderURL,
			Failures:          d.Progress.Failures,
			ReverifyFailures:  d.Progress.ReverifyFailures,
			LastCheckedAt:     d.Progress.LastCheckedAt,
			MovedAt:           d.Progress.MovedAt,
			TransientFailures: d.Progress.TransientFailures,
			OrderStartedAt:    d.Progress.OrderStartedAt,
			RenewAt:           d.Progress.RenewAt,
			RenewalInfoAt:     d.Progress.RenewalInfoAt,
			ReverifyAt:        d.Progress.ReverifyAt,
		},
		Version: d.Version,

		AllPK:          allDomains,
		Name:           d.Hostname,
		TenantPK:       d.TenantID,
		StatusPK:       statusPK(d.Status),
		TenantStatusPK: tenantStatusPK(d.TenantID, d.Status),
	}
	if !d.NextAttemptAt.IsZero() {
		it.DuePK, it.DueSK = duePK, dueSK(d.NextAttemptAt, d.Hostname)
	}
	return it
}

func (it domainItem) domain() domains.Domain {
	return domains.Domain{
		Hostname:          it.Hostname,
		TenantID:          it.TenantID,
		Kind:              domains.Kind(it.Kind),
		RegisteredDomain:  it.RegisteredDomain,
		Status:            domains.Status(it.Status),
		VerificationToken: it.VerificationToken,
		DelegationLabel:   it.DelegationLabel,
		RedirectHTTPS:     it.RedirectHTTPS,
		Upstream:          it.Upstream,
		CoveredBy:         it.CoveredBy,
		LastError:         it.LastError,
		NextAttemptAt:     it.NextAttemptAt,
		VerifyDeadline:    it.VerifyDeadline,
		CreatedAt:         it.CreatedAt,
		UpdatedAt:         it.UpdatedAt,
		VerifiedAt:        it.VerifiedAt,
		Certificate: domains.CertificateInfo{
			Issuer:    it.Certificate.Issuer,
			Serial:    it.Certificate.Serial,
			NotBefore: it.Certificate.NotBefore,
			NotAfter:  it.Certificate.NotAfter,
			DNSNames:  it.Certificate.DNSNames,
		},
		Progress: domains.Progress{
			OrderURL:          it.Progress.OrderURL,
			Failures:          it.Progress.Failures,
			ReverifyFailures:  it.Progress.ReverifyFailures,
			LastCheckedAt:     it.Progress.LastCheckedAt,
			MovedAt:           it.Progress.MovedAt,
			TransientFailures: it.Progress.TransientFailures,
			OrderStartedAt:    it.Progress.OrderStartedAt,
			RenewAt:           it.Progress.RenewAt,
			RenewalInfoAt:     it.Progress.RenewalInfoAt,
			ReverifyAt:        it.Progress.ReverifyAt,
		},
		Version: it.Version,
	}
}

// tenantItem is a tenant as stored. Incarnation is random per CreateTenant: verification
// tokens carry it, so a later tenant given the same ID never sees an earlier one's.
type tenantItem struct {
	PK           string    `dynamodbav:"pk"`
	SK           string    `dynamodbav:"sk"`
	ID           string    `dynamodbav:"id,omitempty"`
	DisplayName  string    `dynamodbav:"display_name,omitempty"`
	KeyHash      string    `dynamodbav:"key_hash,omitempty"`
	CreatedAt    time.Time `dynamodbav:"created_at,omitempty"`
	KeyRotatedAt time.Time `dynamodbav:"key_rotated_at,omitempty"`
	Incarnation  string    `dynamodbav:"incarnation,omitempty"`
	Version      int64     `dynamodbav:"version"`
	AllPK        string    `dynamodbav:"all_pk,omitempty"`
	Name         string    `dynamodbav:"name,omitempty"`
}

func (it tenantItem) tenant() domains.Tenant {
	return domains.Tenant{ID: it.ID, DisplayName: it.DisplayName, KeyHash: it.KeyHash, CreatedAt: it.CreatedAt, KeyRotatedAt: it.KeyRotatedAt}
}

// keyItem claims an API key hash for a tenant. It resolves only while the tenant's own
// record names the same hash, so a claim left by a crash resolves nothing.
type keyItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	TenantID string `dynamodbav:"tenant_id,omitempty"`
}

// tokenItem is a verification token of (tenant, registered domain), in the tenant's
// partition, valid for the tenant incarnation it names.
type tokenItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Token       string `dynamodbav:"token,omitempty"`
	Incarnation string `dynamodbav:"incarnation,omitempty"`
}
