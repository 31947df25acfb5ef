// Package dynamostore keeps tenants and domains in DynamoDB (the domains table of
// pkg/dynamo), with conditional writes only: DynamoDB's transactions are not used, so the
// store also runs on dynalite, and every change is one conditional write on one item, or
// a short sequence of them that is safe to stop at any step.
//
// # Items
//
//	pk                      sk                 what
//	domain#<hostname>       domain             a domain: its record, version, and the index keys
//	tenant#<id>             tenant             a tenant: its record, key hash, incarnation, version
//	tenant#<id>             token#<registered> a verification token, valid for one incarnation
//	key#<key hash>          key                which tenant claims an API key hash
//
// # Indexes (KEYS_ONLY global secondary indexes)
//
//	all               all_pk "domain"|"tenant", name   every domain (every tenant) by name
//	by_tenant         tenant_pk <tenant>, name          a tenant's domains
//	by_status         status_pk <status>, name          domains in a status
//	by_tenant_status  tenant_status_pk <t>#<s>, name    a tenant's domains in a status
//	due               due_pk "due", due_sk <µs>#<host>  scheduled domains by next attempt
//
// A domain item carries the keys of every index it belongs to, so one conditional PutItem
// changes the record and its index entries together (DynamoDB maintains the indexes). A
// listing queries a page of keys from an index and reads the records with one consistent
// BatchGetItem, so its cost follows the page; DueDomains reads only the index. Indexes
// are eventually consistent (on DynamoDB usually within a second): a listing re-checks
// each record against the query, so it never returns a domain that does not match, but a
// domain that just changed may be missing from one page.
//
// # Uniqueness without transactions
//
// A hostname is one item key: CreateDomain is a PutItem on condition that it does not
// exist. A tenant ID is one item key the same way. An API key hash is claimed by its own
// key# item (PutItem on condition that it is free or already this tenant's) before the
// tenant record names it; a hash resolves only while the claim and the tenant's record
// agree, so a crash between the steps leaves a claim that resolves nothing. Verification
// tokens are tied to the tenant's incarnation (random per CreateTenant), so a tenant that
// reuses a deleted tenant's ID never inherits its ownership proofs, even when a deletion
// stopped before removing them.
package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/dynamo"
)

// Store is a domains.Store on DynamoDB.
type Store struct {
	t dynamo.Table
}

var _ domains.Store = (*Store)(nil)

// New returns a store on the domains table t (dynamo.TableDomains).
func New(t dynamo.Table) *Store { return &Store{t: t} }

func (s *Store) get(ctx context.Context, pk, sk string, out any) (bool, error) {
	res, err := s.t.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.t.Name), Key: dynamo.KeyOf(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, dynamo.Wrap(ctx, "read "+pk, err)
	}
	if res.Item == nil {
		return false, nil
	}
	if err := attributevalue.UnmarshalMap(res.Item, out); err != nil {
		return false, fmt.Errorf("%s: bad stored item: %w", pk, err)
	}
	return true, nil
}

// put writes item on condition cond (empty: none) with the given values.
func (s *Store) put(ctx context.Context, item any, cond string, values map[string]types.AttributeValue, returnOld bool) (dynamo.Item, error) {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.t.Name), Item: av}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	if returnOld {
		in.ReturnValues = types.ReturnValueAllOld
	}
	res, err := s.t.Client.PutItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return res.Attributes, nil
}

// --- domains ----------------------------------------------------------------------

// CreateDomain implements domains.DomainStore.
func (s *Store) CreateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	d.Version = 1
	d.Certificate.DNSNames = append([]string(nil), d.Certificate.DNSNames...)
	_, err := s.put(ctx, toItem(d), "attribute_not_exists(pk)", nil, false)
	switch {
	case dynamo.IsConditionFailed(err):
		return domains.Domain{}, fmt.Errorf("domain %q: %w", d.Hostname, domains.ErrAlreadyExists)
	case err != nil:
		return domains.Domain{}, dynamo.Wrap(ctx, fmt.Sprintf("create domain %q", d.Hostname), err)
	}
	return d, nil
}

// GetDomain implements domains.DomainStore.
func (s *Store) GetDomain(ctx context.Context, hostname string) (domains.Domain, error) {
	var it domainItem
	ok, err := s.get(ctx, domainPK(hostname), skDomain, &it)
	if err != nil {
		return domains.Domain{}, err
	}
	if !ok {
		return domains.Domain{}, fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	}
	return it.domain(), nil
}

// UpdateDomain implements domains.DomainStore: one PutItem of the whole record and its
// index keys, on condition that the stored version and tenant are those given.
func (s *Store) UpdateDomain(ctx context.Context, d domains.Domain) (domains.Domain, error) {
	expected := d.Version
	d.Version++
	d.Certificate.DNSNames = append([]string(nil), d.Certificate.DNSNames...)
	_, err := s.put(ctx, toItem(d), "version = :v AND tenant_id = :t",
		map[string]types.AttributeValue{":v": dynamo.N(expected), ":t": dynamo.S(d.TenantID)}, false)
	if dynamo.IsConditionFailed(err) {
		return domains.Domain{}, s.whyDomainWriteFailed(ctx, d.Hostname, expected)
	}
	if err != nil {
		return domains.Domain{}, dynamo.Wrap(ctx, fmt.Sprintf("update domain %q", d.Hostname), err)
	}
	return d, nil
}

// whyDomainWriteFailed tells a missing domain from a changed one after a failed
// condition (DynamoDB's error does not say which part of the condition failed).
func (s *Store) whyDomainWriteFailed(ctx context.Context, hostname string, version int64) error {
	var it domainItem
	ok, err := s.get(ctx, domainPK(hostname), skDomain, &it)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("domain %q: %w", hostname, domains.ErrNotFound)
	}
	return fmt.Errorf("domain %q changed since version %d: %w", hostname, version, domains.ErrConflict)
}

// DeleteDomain implements domains.DomainStore.
func (s *Store) DeleteDomain(ctx context.Context, hostname string, version int64) error {
	_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.t.Name),
		Key:                       dynamo.KeyOf(domainPK(hostname), skDomain),
		ConditionExpression:       aws.String("version = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": dynamo.N(version)},
	})
	if dynamo.IsConditionFailed(err) {
		return s.whyDomainWriteFailed(ctx, hostname, version)
	}
	if err != nil {
		return dynamo.Wrap(ctx, fmt.Sprintf("delete domain %q", hostname), err)
	}
	return nil
}

// ListDomains implements domains.DomainStore.
func (s *Store) ListDomains(ctx context.Context, q domains.ListQuery) ([]domains.Domain, error) {
	index, keyAttr, keyValue := dynamo.IndexAll, dynamo.AttrAllPK, allDomains
	switch {
	case q.TenantID != "" && q.Status != 0:
		index, keyAttr, keyValue = dynamo.IndexByTenantStatus, dynamo.AttrTenantStatusPK, tenantStatusPK(q.TenantID, q.Status)
	case q.TenantID != "":
		index, keyAttr, keyValue = dynamo.IndexByTenant, dynamo.AttrTenantPK, q.TenantID
	case q.Status != 0:
		index, keyAttr, keyValue = dynamo.IndexByStatus, dynamo.AttrStatusPK, statusPK(q.Status)
	}
	matches := func(d domains.Domain) bool {
		return (q.TenantID == "" || d.TenantID == q.TenantID) && (q.Status == 0 || d.Status == q.Status)
	}
	out := make([]domains.Domain, 0, q.Limit)
	err := s.pageByName(ctx, index, keyAttr, keyValue, q.After, q.Limit, skDomain, func(item dynamo.Item) (bool, error) {
		var it domainItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return false, fmt.Errorf("bad stored domain: %w", err)
		}
		if d := it.domain(); matches(d) {
			out = append(out, d)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	return out, nil
}

// pageByName reads up to limit records listed by index under keyValue with names after
// after, in name order: a page of keys from the index, then the records (sort key sk)
// with one consistent batch read. take is called with each record found in order and
// says whether it counts towards the page; reading goes on until the page is full or
// the index ends, so a page is short only at the end.
func (s *Store) pageByName(ctx context.Context, index, keyAttr, keyValue, after string, limit int, sk string,
	take func(dynamo.Item) (bool, error)) error {
	taken := 0
	for taken < limit {
		want := limit - taken
		cond := "#k = :k"
		names := map[string]string{"#k": keyAttr}
		values := map[string]types.AttributeValue{":k": dynamo.S(keyValue)}
		if after != "" {
			cond += " AND #n > :after"
			names["#n"] = dynamo.AttrName
			values[":after"] = dynamo.S(after)
		}
		res, err := s.t.Client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.t.Name),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
			Limit:                     aws.Int32(int32(want)),
		})
		if err != nil {
			return dynamo.Wrap(ctx, "query index "+index, err)
		}
		if len(res.Items) == 0 {
			return nil
		}
		pks := make([]string, len(res.Items))
		for i, k := range res.Items {
			pks[i] = dynamo.StringAttr(k, dynamo.AttrPK)
		}
		records, err := s.t.BatchGet(ctx, pks, sk)
		if err != nil {
			return err
		}
		for _, pk := range pks {
			item, ok := records[pk]
			if !ok {
				continue // deleted since the index was read
			}
			counted, err := take(item)
			if err != nil {
				return err
			}
			if counted {
				taken++
			}
		}
		after = dynamo.StringAttr(res.Items[len(res.Items)-1], dynamo.AttrName)
		if res.LastEvaluatedKey == nil {
			return nil
		}
	}
	return nil
}

// DueDomains implements domains.DomainStore: one query of the due index, which holds
// only scheduled domains, up to limit.
func (s *Store) DueDomains(ctx context.Context, before time.Time, limit int) ([]string, error) {
	res, err := s.t.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(s.t.Name),
		IndexName:              aws.String(dynamo.IndexDue),
		KeyConditionExpression: aws.String("due_pk = :due AND due_sk < :upper"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":due": dynamo.S(duePK),
			// Every entry at or before `before` (to the µs) sorts below the next µs.
			":upper": dynamo.S(dynamo.SortableMicros(before.Add(time.Microsecond))),
		},
		Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, dynamo.Wrap(ctx, "due domains", err)
	}
	out := make([]string, 0, len(res.Items))
	for _, k := range res.Items {
		if host, ok := dynamo.TrimPrefix(dynamo.StringAttr(k, dynamo.AttrPK), pkDomainPrefix); ok {
			out = append(out, host)
		}
	}
	return out, nil
}

// VerificationToken implements domains.DomainStore. The token item is written on
// condition that none exists for the tenant's current incarnation; when one does, it is
// returned instead, so concurrent callers all get the first one written.
func (s *Store) VerificationToken(ctx context.Context, tenantID, registeredDomain, candidate string) (string, error) {
	var tn tenantItem
	if _, err := s.get(ctx, tenantPK(tenantID), skTenant, &tn); err != nil {
		return "", fmt.Errorf("verification token: %w", err)
	}
	inc := tn.Incarnation
	if inc == "" {
		inc = noTenant
	}
	key := tokenItem{PK: tenantPK(tenantID), SK: skTokenPrefix + registeredDomain, Token: candidate, Incarnation: inc}
	_, err := s.put(ctx, key, "attribute_not_exists(pk) OR incarnation <> :inc",
		map[string]types.AttributeValue{":inc": dynamo.S(inc)}, false)
	switch {
	case err == nil:
		return candidate, nil
	case !dynamo.IsConditionFailed(err):
		return "", dynamo.Wrap(ctx, "verification token", err)
	}
	var stored tokenItem
	ok, err := s.get(ctx, key.PK, key.SK, &stored)
	if err != nil {
		return "", fmt.Errorf("verification token: %w", err)
	}
	if !ok || stored.Token == "" {
		return "", fmt.Errorf("verification token of %s for %s vanished while it was read; retry", tenantID, registeredDomain)
	}
	return stored.Token, nil
}

// --- tenants ----------------------------------------------------------------------

// noTenant is the incarnation of tokens asked for a tenant that does not exist.
const noTenant = "-"

func newIncarnation() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// claimKey claims keyHash for tenant: free, or already this tenant's. It reports whether
// the claim is new (so that a failed step after it knows to withdraw it).
func (s *Store) claimKey(ctx context.Context, keyHash, tenant string) (fresh bool, err error) {
	old, err := s.put(ctx, keyItem{PK: keyPK(keyHash), SK: skKey, TenantID: tenant},
		"attribute_not_exists(pk) OR tenant_id = :t", map[string]types.AttributeValue{":t": dynamo.S(tenant)}, true)
	switch {
	case dynamo.IsConditionFailed(err):
		return false, fmt.Errorf("tenant key: %w", domains.ErrAlreadyExists)
	case err != nil:
		return false, dynamo.Wrap(ctx, "claim tenant key", err)
	}
	return old == nil, nil
}

// releaseKey removes keyHash's claim while it is tenant's. It is cleanup: a claim that
// stays resolves nothing, since the tenant's record does not name it.
func (s *Store) releaseKey(ctx context.Context, keyHash, tenant string) error {
	_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.t.Name),
		Key:                       dynamo.KeyOf(keyPK(keyHash), skKey),
		ConditionExpression:       aws.String("tenant_id = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": dynamo.S(tenant)},
	})
	if err != nil && !dynamo.IsConditionFailed(err) {
		return dynamo.Wrap(ctx, "release tenant key", err)
	}
	return nil
}

// CreateTenant implements domains.TenantStore: claim the key hash, then create the
// tenant record on condition that the ID is free; withdraw a new claim if it is not.
func (s *Store) CreateTenant(ctx context.Context, t domains.Tenant) error {
	fresh, err := s.claimKey(ctx, t.KeyHash, t.ID)
	if err != nil {
		return err
	}
	it := tenantItem{
		PK: tenantPK(t.ID), SK: skTenant, ID: t.ID, DisplayName: t.DisplayName, KeyHash: t.KeyHash,
		CreatedAt: t.CreatedAt, KeyRotatedAt: t.KeyRotatedAt, Incarnation: newIncarnation(), Version: 1,
		AllPK: allTenants, Name: t.ID,
	}
	_, err = s.put(ctx, it, "attribute_not_exists(pk)", nil, false)
	if err == nil {
		return nil
	}
	if !dynamo.IsConditionFailed(err) {
		return dynamo.Wrap(ctx, fmt.Sprintf("create tenant %q", t.ID), err)
	}
	if fresh {
		if rerr := s.releaseKey(context.WithoutCancel(ctx), t.KeyHash, t.ID); rerr != nil {
			return rerr
		}
	}
	return fmt.Errorf("tenant %q: %w", t.ID, domains.ErrAlreadyExists)
}

func (s *Store) getTenant(ctx context.Context, id string) (tenantItem, error) {
	var it tenantItem
	ok, err := s.get(ctx, tenantPK(id), skTenant, &it)
	if err != nil {
		return tenantItem{}, err
	}
	if !ok {
		return tenantItem{}, fmt.Errorf("tenant %q: %w", id, domains.ErrNotFound)
	}
	return it, nil
}

// GetTenant implements domains.TenantStore.
func (s *Store) GetTenant(ctx context.Context, id string) (domains.Tenant, error) {
	it, err := s.getTenant(ctx, id)
	if err != nil {
		return domains.Tenant{}, err
	}
	return it.tenant(), nil
}

// TenantByKeyHash implements domains.TenantStore: the claim names the tenant, whose
// record must name the same hash.
func (s *Store) TenantByKeyHash(ctx context.Context, keyHash string) (domains.Tenant, error) {
	var k keyItem
	ok, err := s.get(ctx, keyPK(keyHash), skKey, &k)
	if err != nil {
		return domains.Tenant{}, fmt.Errorf("resolve tenant key: %w", err)
	}
	if !ok {
		return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrNotFound)
	}
	t, err := s.GetTenant(ctx, k.TenantID)
	if errors.Is(err, domains.ErrNotFound) || err == nil && t.KeyHash != keyHash {
		return domains.Tenant{}, fmt.Errorf("tenant key: %w", domains.ErrNotFound)
	}
	if err != nil {
		return domains.Tenant{}, err
	}
	return t, nil
}

// ListTenants implements domains.TenantStore.
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]domains.Tenant, error) {
	out := make([]domains.Tenant, 0, limit)
	err := s.pageByName(ctx, dynamo.IndexAll, dynamo.AttrAllPK, allTenants, after, limit, skTenant, func(item dynamo.Item) (bool, error) {
		var it tenantItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return false, fmt.Errorf("bad stored tenant: %w", err)
		}
		out = append(out, it.tenant())
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// RotateTenantKey implements domains.TenantStore: claim the new hash, switch the record
// to it on condition that its version is the one read (retrying after a concurrent
// change), then withdraw the old claim. From the switch on, the old hash resolves to
// nothing: its claim no longer agrees with the record.
func (s *Store) RotateTenantKey(ctx context.Context, id, newKeyHash string, at time.Time) (domains.Tenant, error) {
	for {
		it, err := s.getTenant(ctx, id)
		if err != nil {
			return domains.Tenant{}, err
		}
		fresh, err := s.claimKey(ctx, newKeyHash, id)
		if err != nil {
			return domains.Tenant{}, err
		}
		old := it.KeyHash
		atValue, err := attributevalue.Marshal(at)
		if err != nil {
			return domains.Tenant{}, err
		}
		_, err = s.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(s.t.Name),
			Key:                 dynamo.KeyOf(tenantPK(id), skTenant),
			UpdateExpression:    aws.String("SET key_hash = :h, key_rotated_at = :at, version = :next"),
			ConditionExpression: aws.String("version = :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":h": dynamo.S(newKeyHash), ":at": atValue,
				":v": dynamo.N(it.Version), ":next": dynamo.N(it.Version + 1),
			},
		})
		if dynamo.IsConditionFailed(err) {
			if fresh {
				if rerr := s.releaseKey(context.WithoutCancel(ctx), newKeyHash, id); rerr != nil {
					return domains.Tenant{}, rerr
				}
			}
			continue // changed or deleted meanwhile: read again
		}
		if err != nil {
			return domains.Tenant{}, dynamo.Wrap(ctx, fmt.Sprintf("rotate key of tenant %q", id), err)
		}
		if old != newKeyHash {
			if err := s.releaseKey(context.WithoutCancel(ctx), old, id); err != nil {
				return domains.Tenant{}, err
			}
		}
		t := it.tenant()
		t.KeyHash, t.KeyRotatedAt = newKeyHash, at
		return t, nil
	}
}

// DeleteTenant implements domains.TenantStore: delete the record on condition that its
// version is the one read, then withdraw its key claim and remove its verification
// tokens (those of this incarnation; later ones are another tenant's).
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	for {
		it, err := s.getTenant(ctx, id)
		if err != nil {
			return err
		}
		_, err = s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(s.t.Name),
			Key:                       dynamo.KeyOf(tenantPK(id), skTenant),
			ConditionExpression:       aws.String("version = :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": dynamo.N(it.Version)},
		})
		if dynamo.IsConditionFailed(err) {
			continue
		}
		if err != nil {
			return dynamo.Wrap(ctx, fmt.Sprintf("delete tenant %q", id), err)
		}
		ctx := context.WithoutCancel(ctx) // the tenant is gone: finish the cleanup
		if err := s.releaseKey(ctx, it.KeyHash, id); err != nil {
			return err
		}
		return s.deleteTokens(ctx, id, it.Incarnation)
	}
}

func (s *Store) deleteTokens(ctx context.Context, tenant, incarnation string) error {
	p := dynamodb.NewQueryPaginator(s.t.Client, &dynamodb.QueryInput{
		TableName:              aws.String(s.t.Name),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :tok)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": dynamo.S(tenantPK(tenant)), ":tok": dynamo.S(skTokenPrefix),
		},
		ProjectionExpression: aws.String("pk, sk"),
		ConsistentRead:       aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return dynamo.Wrap(ctx, "list verification tokens", err)
		}
		for _, k := range page.Items {
			_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 aws.String(s.t.Name),
				Key:                       dynamo.KeyOf(dynamo.StringAttr(k, dynamo.AttrPK), dynamo.StringAttr(k, dynamo.AttrSK)),
				ConditionExpression:       aws.String("incarnation = :inc"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":inc": dynamo.S(incarnation)},
			})
			if err != nil && !dynamo.IsConditionFailed(err) {
				return dynamo.Wrap(ctx, "delete verification token", err)
			}
		}
	}
	return nil
}
