package redisstore

import (
	"time"

	"github.com/portico-dev/portico/pkg/domains"
)

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
