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

// domainItem is a domain as stored: the shared storage format (domains.Stored, its
// attributes flattened into the item) with the item's keys, the version and the index
// attributes (all_pk, name, tenant_pk, status_pk, tenant_status_pk, due_pk, due_sk),
// which are derived from the record on every write.
type domainItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`

	domains.Stored
	Version int64 `dynamodbav:"version"`

	AllPK          string `dynamodbav:"all_pk,omitempty"`
	Name           string `dynamodbav:"name,omitempty"`
	TenantPK       string `dynamodbav:"tenant_pk,omitempty"`
	StatusPK       string `dynamodbav:"status_pk,omitempty"`
	TenantStatusPK string `dynamodbav:"tenant_status_pk,omitempty"`
	DuePK          string `dynamodbav:"due_pk,omitempty"`
	DueSK          string `dynamodbav:"due_sk,omitempty"`
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
		Stored:  domains.ToStored(d),
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

func (it domainItem) domain() domains.Domain { return it.Stored.Domain(it.Version) }

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
