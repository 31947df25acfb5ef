package domains

import "time"

// Stored is the storage format of a Domain that every backend writes: JSON in Redis
// (redisstore), attributes in DynamoDB (dynamostore, which adds its keys and index
// attributes around it). One definition, so a field added to Domain is added to every
// backend at once. Its tag names are the format: rename a Go field freely, never a tag.
// Version is not here: each backend keeps it beside the record, where its
// compare-and-swap reads it.
type Stored struct {
	Hostname          string            `json:"hostname" dynamodbav:"hostname,omitempty"`
	TenantID          string            `json:"tenant_id" dynamodbav:"tenant_id,omitempty"`
	Kind              uint8             `json:"kind" dynamodbav:"kind,omitempty"`
	RegisteredDomain  string            `json:"registered_domain" dynamodbav:"registered_domain,omitempty"`
	Status            uint8             `json:"status" dynamodbav:"status,omitempty"`
	VerificationToken string            `json:"verification_token" dynamodbav:"verification_token,omitempty"`
	DelegationLabel   string            `json:"delegation_label,omitempty" dynamodbav:"delegation_label,omitempty"`
	RedirectHTTPS     bool              `json:"redirect_https" dynamodbav:"redirect_https,omitempty"`
	Upstream          string            `json:"upstream,omitempty" dynamodbav:"upstream,omitempty"`
	CoveredBy         string            `json:"covered_by,omitempty" dynamodbav:"covered_by,omitempty"`
	LastError         string            `json:"last_error,omitempty" dynamodbav:"last_error,omitempty"`
	NextAttemptAt     time.Time         `json:"next_attempt_at,omitzero" dynamodbav:"next_attempt_at,omitempty"`
	VerifyDeadline    time.Time         `json:"verify_deadline,omitzero" dynamodbav:"verify_deadline,omitempty"`
	CreatedAt         time.Time         `json:"created_at,omitzero" dynamodbav:"created_at,omitempty"`
	UpdatedAt         time.Time         `json:"updated_at,omitzero" dynamodbav:"updated_at,omitempty"`
	VerifiedAt        time.Time         `json:"verified_at,omitzero" dynamodbav:"verified_at,omitempty"`
	Certificate       StoredCertificate `json:"certificate,omitzero" dynamodbav:"certificate,omitempty"`
	Progress          StoredProgress    `json:"progress,omitzero" dynamodbav:"progress,omitempty"`
}

// StoredCertificate is the storage format of CertificateInfo.
type StoredCertificate struct {
	Issuer    string    `json:"issuer,omitempty" dynamodbav:"issuer,omitempty"`
	Serial    string    `json:"serial,omitempty" dynamodbav:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero" dynamodbav:"not_before,omitempty"`
	NotAfter  time.Time `json:"not_after,omitzero" dynamodbav:"not_after,omitempty"`
	DNSNames  []string  `json:"dns_names,omitempty" dynamodbav:"dns_names,omitempty"`
}

// StoredProgress is the storage format of Progress.
type StoredProgress struct {
	OrderURL          string    `json:"order_url,omitempty" dynamodbav:"order_url,omitempty"`
	Failures          int       `json:"failures,omitempty" dynamodbav:"failures,omitempty"`
	ReverifyFailures  int       `json:"reverify_failures,omitempty" dynamodbav:"reverify_failures,omitempty"`
	LastCheckedAt     time.Time `json:"last_checked_at,omitzero" dynamodbav:"last_checked_at,omitempty"`
	MovedAt           time.Time `json:"moved_at,omitzero" dynamodbav:"moved_at,omitempty"`
	TransientFailures int       `json:"transient_failures,omitempty" dynamodbav:"transient_failures,omitempty"`
	OrderStartedAt    time.Time `json:"order_started_at,omitzero" dynamodbav:"order_started_at,omitempty"`
	RenewAt           time.Time `json:"renew_at,omitzero" dynamodbav:"renew_at,omitempty"`
	RenewalInfoAt     time.Time `json:"renewal_info_at,omitzero" dynamodbav:"renewal_info_at,omitempty"`
	ReverifyAt        time.Time `json:"reverify_at,omitzero" dynamodbav:"reverify_at,omitempty"`
}

// ToStored is d's storage form.
func ToStored(d Domain) Stored {
	return Stored{
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
		Certificate:       StoredCertificate(d.Certificate),
		Progress:          StoredProgress(d.Progress),
	}
}

// Domain is the domain s stores, at version.
func (s Stored) Domain(version int64) Domain {
	return Domain{
		Hostname:          s.Hostname,
		TenantID:          s.TenantID,
		Kind:              Kind(s.Kind),
		RegisteredDomain:  s.RegisteredDomain,
		Status:            Status(s.Status),
		VerificationToken: s.VerificationToken,
		DelegationLabel:   s.DelegationLabel,
		RedirectHTTPS:     s.RedirectHTTPS,
		Upstream:          s.Upstream,
		CoveredBy:         s.CoveredBy,
		LastError:         s.LastError,
		NextAttemptAt:     s.NextAttemptAt,
		VerifyDeadline:    s.VerifyDeadline,
		CreatedAt:         s.CreatedAt,
		UpdatedAt:         s.UpdatedAt,
		VerifiedAt:        s.VerifiedAt,
		Certificate:       CertificateInfo(s.Certificate),
		Progress:          Progress(s.Progress),
		Version:           version,
	}
}
