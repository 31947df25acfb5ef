package redisstore

import (
	"time"

	"github.com/portico-dev/portico/pkg/domains"
)

// domainRecord is the stored JSON form of a domain. Its field names are the storage
// format: rename a Go field freely, never a tag. Version lives in the record's hash
// field "v", not here.
type domainRecord struct {
	Hostname          string         `json:"hostname"`
	TenantID          string         `json:"tenant_id"`
	Kind              uint8          `json:"kind"`
	RegisteredDomain  string         `json:"registered_domain"`
	Status            uint8          `json:"status"`
	VerificationToken string         `json:"verification_token"`
	DelegationLabel   string         `json:"delegation_label,omitempty"`
	RedirectHTTPS     bool           `json:"redirect_https"`
	Upstream          string         `json:"upstream,omitempty"`
	CoveredBy         string         `json:"covered_by,omitempty"`
	LastError         string         `json:"last_error,omitempty"`
	NextAttemptAt     time.Time      `json:"next_attempt_at,omitzero"`
	VerifyDeadline    time.Time      `json:"verify_deadline,omitzero"`
	CreatedAt         time.Time      `json:"created_at,omitzero"`
	UpdatedAt         time.Time      `json:"updated_at,omitzero"`
	VerifiedAt        time.Time      `json:"verified_at,omitzero"`
	Certificate       certRecord     `json:"certificate,omitzero"`
	Progress          progressRecord `json:"progress,omitzero"`
}

type certRecord struct {
	Issuer    string    `json:"issuer,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	DNSNames  []string  `json:"dns_names,omitempty"`
}

type progressRecord struct {
	OrderURL         string    `json:"order_url,omitempty"`
	Failures         int       `json:"failures,omitempty"`
	ReverifyFailures int       `json:"reverify_failures,omitempty"`
	LastCheckedAt    time.Time `json:"last_checked_at,omitzero"`
	MovedAt          time.Time `json:"moved_at,omitzero"`
	// Added for the notary's schedule (issue 6).
	TransientFailures int       `json:"transient_failures,omitempty"`
	OrderStartedAt    time.Time `json:"order_started_at,omitzero"`
	RenewAt           time.Time `json:"renew_at,omitzero"`
	RenewalInfoAt     time.Time `json:"renewal_info_at,omitzero"`
	ReverifyAt        time.Time `json:"reverify_at,omitzero"`
}

func toRecord(d domains.Domain) domainRecord {
	return domainRecord{
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
		Certificate: certRecord{
			Issuer:    d.Certificate.Issuer,
			Serial:    d.Certificate.Serial,
			NotBefore: d.Certificate.NotBefore,
			NotAfter:  d.Certificate.NotAfter,
			DNSNames:  d.Certificate.DNSNames,
		},
		Progress: progressRecord{
			OrderURL:         d.Progress.OrderURL,
			Failures:         d.Progress.Failures,
			ReverifyFailures: d.Progress.ReverifyFailures,
			LastCheckedAt:    d.Progress.LastCheckedAt,
			MovedAt:          d.Progress.MovedAt,

			TransientFailures: d.Progress.TransientFailures,
			OrderStartedAt:    d.Progress.OrderStartedAt,
			RenewAt:           d.Progress.RenewAt,
			RenewalInfoAt:     d.Progress.RenewalInfoAt,
			ReverifyAt:        d.Progress.ReverifyAt,
		},
	}
}

func (r domainRecord) domain(version int64) domains.Domain {
	return domains.Domain{
		Hostname:          r.Hostname,
		TenantID:          r.TenantID,
		Kind:              domains.Kind(r.Kind),
		RegisteredDomain:  r.RegisteredDomain,
		Status:            domains.Status(r.Status),
		VerificationToken: r.VerificationToken,
		DelegationLabel:   r.DelegationLabel,
		RedirectHTTPS:     r.RedirectHTTPS,
		Upstream:          r.Upstream,
		CoveredBy:         r.CoveredBy,
		LastError:         r.LastError,
		NextAttemptAt:     r.NextAttemptAt,
		VerifyDeadline:    r.VerifyDeadline,
		CreatedAt:         r.CreatedAt,
		UpdatedAt:         r.UpdatedAt,
		VerifiedAt:        r.VerifiedAt,
		Certificate: domains.CertificateInfo{
			Issuer:    r.Certificate.Issuer,
			Serial:    r.Certificate.Serial,
			NotBefore: r.Certificate.NotBefore,
			NotAfter:  r.Certificate.NotAfter,
			DNSNames:  r.Certificate.DNSNames,
		},
		Progress: domains.Progress{
			OrderURL:         r.Progress.OrderURL,
			Failures:         r.Progress.Failures,
			ReverifyFailures: r.Progress.ReverifyFailures,
			LastCheckedAt:    r.Progress.LastCheckedAt,
			MovedAt:          r.Progress.MovedAt,

			TransientFailures: r.Progress.TransientFailures,
			OrderStartedAt:    r.Progress.OrderStartedAt,
			RenewAt:           r.Progress.RenewAt,
			RenewalInfoAt:     r.Progress.RenewalInfoAt,
			ReverifyAt:        r.Progress.ReverifyAt,
		},
		Version: version,
	}
}

// tenantRecord is the stored JSON form of a tenant.
type tenantRecord struct {
	ID           string    `json:"id"`
	DisplayName  string    `json:"display_name,omitempty"`
	KeyHash      string    `json:"key_hash"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	KeyRotatedAt time.Time `json:"key_rotated_at,omitzero"`
}

func toTenantRecord(t domains.Tenant) tenantRecord {
	return tenantRecord(t)
}

func (r tenantRecord) tenant() domains.Tenant { return domains.Tenant(r) }
