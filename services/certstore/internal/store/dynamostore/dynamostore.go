// Package dynamostore is the DynamoDB implementation of store.Store, on the certstore
// table of pkg/dynamo.
//
// # Items
//
//	pk       sk     attributes
//	<name>   cert   chain (list of binary DER, leaf first), key_ref (binary), not_after and
//	                renew_at (Unix ms), version, fence, renew_pk "renew", renew_sk
//	                "<renew Unix ms, 19 digits>#<name>"
//	<name>   route  tenant, upstream, redirect (boolean)
//
// A certificate and the route of one name share a partition, so GetServing is one
// strongly consistent Query (one request, and one read unit when both fit in 4 KiB).
//
// Every certificate write is one conditional UpdateItem: PutCertificate checks the
// fencing token, increments the version and replaces every field at once, returning the
// old item for the key reference it replaced; a reader sees the old or the new record,
// never a mix. DeleteCertificate removes the certificate's fields but keeps version and
// fence in a tombstone whose expires_at (DynamoDB's time-to-live) is
// store.TombstoneTTL later; until DynamoDB removes it, which may be later still, the
// tombstone keeps fencing.
//
// # The expiry index
//
// The expiry index is the KEYS_ONLY global secondary index "renew" over renew_pk and
// renew_sk, written by DynamoDB with the record itself, so it never disagrees with the
// record for long and needs no repair. It is eventually consistent (usually well within
// a second): ListDue reads candidates from it a page at a time and re-reads their
// records with one consistent BatchGetItem, returning only records that are really due,
// so it never returns a name that is not due nor a deleted one. A tombstone has no
// renew_pk and is not in the index.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/services/certstore/internal/store"
)

// Sort keys and attributes.
const (
	skCert  = "cert"
	skRoute = "route"

	aChain    = "chain"
	aKeyRef   = "key_ref"
	aNotAfter = "not_after"
	aRenewAt  = "renew_at"
	aVersion  = "version"
	aFence    = "fence"

	aTenant   = "tenant"
	aUpstream = "upstream"
	aRedirect = "redirect"

	renewPK = "renew"
)

// Store is a store.Store on DynamoDB.
type Store struct {
	t dynamo.Table
}

var _ store.Store = (*Store)(nil)

// New returns a store on the certstore table t (dynamo.TableCertstore).
func New(t dynamo.Table) *Store { return &Store{t: t} }

func renewSK(renew time.Time, name string) string { return dynamo.SortableMillis(renew) + "#" + name }

func (s *Store) getItem(ctx context.Context, name, sk string) (dynamo.Item, error) {
	res, err := s.t.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.t.Name), Key: dynamo.KeyOf(name, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, dynamo.Wrap(ctx, "read "+sk+" "+name, err)
	}
	return res.Item, nil
}

// GetCertificate implements store.Store.
func (s *Store) GetCertificate(ctx context.Context, name string) (store.Certificate, error) {
	item, err := s.getItem(ctx, name, skCert)
	if err != nil {
		return store.Certificate{}, err
	}
	return decodeCert(name, item)
}

// decodeCert reads a certificate item; a missing item or a tombstone is ErrNotFound.
func decodeCert(name string, item dynamo.Item) (store.Certificate, error) {
	key, ok := item[aKeyRef].(*types.AttributeValueMemberB)
	if !ok {
		return store.Certificate{}, store.ErrNotFound
	}
	c := store.Certificate{Name: name, KeyRef: append([]byte(nil), key.Value...)}
	chain, _ := item[aChain].(*types.AttributeValueMemberL)
	if chain == nil {
		return store.Certificate{}, fmt.Errorf("certificate %s: stored without a chain", name)
	}
	for _, v := range chain.Value {
		der, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			return store.Certificate{}, fmt.Errorf("certificate %s: stored chain element is not binary", name)
		}
		c.Chain = append(c.Chain, append([]byte(nil), der.Value...))
	}
	var ints [4]int64
	for i, attr := range []string{aNotAfter, aRenewAt, aVersion, aFence} {
		n, err := numberAttr(item, attr)
		if err != nil {
			return store.Certificate{}, fmt.Errorf("certificate %s: %w", name, err)
		}
		ints[i] = n
	}
	c.NotAfter, c.RenewTime = time.UnixMilli(ints[0]), time.UnixMilli(ints[1])
	c.Version, c.FencingToken = ints[2], ints[3]
	return c, nil
}

func numberAttr(item dynamo.Item, attr string) (int64, error) {
	v, ok := item[attr].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("stored field %s missing", attr)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stored field %s: %w", attr, err)
	}
	return n, nil
}

// PutCertificate implements store.Store: one UpdateItem on condition that the stored
// fencing token is not higher.
func (s *Store) PutCertificate(ctx context.Context, c store.Certificate) (store.Certificate, []byte, error) {
	if len(c.KeyRef) == 0 {
		return store.Certificate{}, nil, errors.New("certificate without a key reference")
	}
	c = c.Clone()
	c.NotAfter = c.NotAfter.Truncate(time.Millisecond)
	c.RenewTime = c.RenewTime.Truncate(time.Millisecond)
	chain := make([]types.AttributeValue, len(c.Chain))
	for i, der := range c.Chain {
		chain[i] = &types.AttributeValueMemberB{Value: der}
	}
	res, err := s.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.t.Name),
		Key:       dynamo.KeyOf(c.Name, skCert),
		UpdateExpression: aws.String("SET chain = :chain, key_ref = :key, not_after = :na, renew_at = :renew, fence = :fence, " +
			"renew_pk = :rpk, renew_sk = :rsk, version = if_not_exists(version, :zero) + :one REMOVE expires_at"),
		ConditionExpression: aws.String("attribute_not_exists(fence) OR fence <= :fence"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":chain": &types.AttributeValueMemberL{Value: chain},
			":key":   &types.AttributeValueMemberB{Value: c.KeyRef},
			":na":    dynamo.N(c.NotAfter.UnixMilli()),
			":renew": dynamo.N(c.RenewTime.UnixMilli()),
			":fence": dynamo.N(c.FencingToken),
			":rpk":   dynamo.S(renewPK),
			":rsk":   dynamo.S(renewSK(c.RenewTime, c.Name)),
			":zero":  dynamo.N(0),
			":one":   dynamo.N(1),
		},
		ReturnValues: types.ReturnValueAllOld,
	})
	if dynamo.IsConditionFailed(err) {
		return store.Certificate{}, nil, store.ErrStaleFencing
	}
	if err != nil {
		return store.Certificate{}, nil, dynamo.Wrap(ctx, "store certificate "+c.Name, err)
	}
	// The update is atomic, so the version it wrote is the old one plus one.
	old := res.Attributes
	var prev int64
	if _, ok := old[aVersion]; ok {
		if prev, err = numberAttr(old, aVersion); err != nil {
			return store.Certificate{}, nil, fmt.Errorf("certificate %s: %w", c.Name, err)
		}
	}
	c.Version = prev + 1
	var replaced []byte
	if key, ok := old[aKeyRef].(*types.AttributeValueMemberB); ok {
		replaced = key.Value
	}
	return c, replaced, nil
}

// DeleteCertificate implements store.Store: one UpdateItem that turns the record into a
// tombstone (version and fence only, expiring after store.TombstoneTTL).
func (s *Store) DeleteCertificate(ctx context.Context, name string, fencingToken int64) ([]byte, error) {
	res, err := s.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.t.Name),
		Key:                 dynamo.KeyOf(name, skCert),
		UpdateExpression:    aws.String("REMOVE chain, key_ref, not_after, renew_at, renew_pk, renew_sk SET fence = :fence, expires_at = :exp"),
		ConditionExpression: aws.String("attribute_exists(key_ref) AND fence <= :fence"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":fence": dynamo.N(fencingToken),
			":exp":   dynamo.N(dynamo.EpochSeconds(time.Now().Add(store.TombstoneTTL))),
		},
		ReturnValues: types.ReturnValueAllOld,
	})
	if dynamo.IsConditionFailed(err) {
		item, gerr := s.getItem(ctx, name, skCert)
		if gerr != nil {
			return nil, gerr
		}
		if _, live := item[aKeyRef]; !live {
			return nil, store.ErrNotFound
		}
		return nil, store.ErrStaleFencing
	}
	if err != nil {
		return nil, dynamo.Wrap(ctx, "delete certificate "+name, err)
	}
	key, _ := res.Attributes[aKeyRef].(*types.AttributeValueMemberB)
	if key == nil {
		return nil, fmt.Errorf("certificate %s: deleted record had no key reference", name)
	}
	return key.Value, nil
}

// SwapKeyRef implements store.Store.
func (s *Store) SwapKeyRef(ctx context.Context, name string, version int64, oldRef, newRef []byte) error {
	_, err := s.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.t.Name),
		Key:                 dynamo.KeyOf(name, skCert),
		UpdateExpression:    aws.String("SET key_ref = :new"),
		ConditionExpression: aws.String("version = :v AND key_ref = :old"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":new": &types.AttributeValueMemberB{Value: newRef},
			":old": &types.AttributeValueMemberB{Value: oldRef},
			":v":   dynamo.N(version),
		},
	})
	if dynamo.IsConditionFailed(err) {
		item, gerr := s.getItem(ctx, name, skCert)
		if gerr != nil {
			return gerr
		}
		if _, live := item[aKeyRef]; !live {
			return store.ErrNotFound
		}
		return store.ErrConflict
	}
	if err != nil {
		return dynamo.Wrap(ctx, "swap key reference of "+name, err)
	}
	return nil
}

// GetServing implements store.Store: one consistent Query of the name's partition reads
// both the certificate and the route.
func (s *Store) GetServing(ctx context.Context, name string) (store.Serving, error) {
	res, err := s.t.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.t.Name),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": dynamo.S(name)},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return store.Serving{}, dynamo.Wrap(ctx, "read certificate and route "+name, err)
	}
	var out store.Serving
	for _, item := range res.Items {
		switch dynamo.StringAttr(item, dynamo.AttrSK) {
		case skCert:
			c, err := decodeCert(name, item)
			switch {
			case err == nil:
				out.Certificate = &c
			case !errors.Is(err, store.ErrNotFound):
				return store.Serving{}, err
			}
		case skRoute:
			r := decodeRoute(name, item)
			out.Route = &r
		}
	}
	return out, nil
}

// GetRoute implements store.Store.
func (s *Store) GetRoute(ctx context.Context, name string) (store.Route, error) {
	item, err := s.getItem(ctx, name, skRoute)
	if err != nil {
		return store.Route{}, err
	}
	if item == nil {
		return store.Route{}, store.ErrNotFound
	}
	return decodeRoute(name, item), nil
}

func decodeRoute(name string, item dynamo.Item) store.Route {
	redirect, _ := item[aRedirect].(*types.AttributeValueMemberBOOL)
	return store.Route{
		Hostname:      name,
		TenantID:      dynamo.StringAttr(item, aTenant),
		Upstream:      dynamo.StringAttr(item, aUpstream),
		RedirectHTTPS: redirect != nil && redirect.Value,
	}
}

// SetRoute implements store.Store: one PutItem replaces the whole route.
func (s *Store) SetRoute(ctx context.Context, r store.Route) error {
	item := dynamo.KeyOf(r.Hostname, skRoute)
	item[aRedirect] = &types.AttributeValueMemberBOOL{Value: r.RedirectHTTPS}
	if r.TenantID != "" {
		item[aTenant] = dynamo.S(r.TenantID)
	}
	if r.Upstream != "" {
		item[aUpstream] = dynamo.S(r.Upstream)
	}
	if _, err := s.t.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.t.Name), Item: item}); err != nil {
		return dynamo.Wrap(ctx, "store route "+r.Hostname, err)
	}
	return nil
}

// DeleteRoute implements store.Store.
func (s *Store) DeleteRoute(ctx context.Context, name string) error {
	_, err := s.t.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           aws.String(s.t.Name),
		Key:                 dynamo.KeyOf(name, skRoute),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	})
	if dynamo.IsConditionFailed(err) {
		return store.ErrNotFound
	}
	if err != nil {
		return dynamo.Wrap(ctx, "delete route "+name, err)
	}
	return nil
}

// ListDue implements store.Store: index pages re-checked against their records.
func (s *Store) ListDue(ctx context.Context, before time.Time, pageSize int, pageToken string) ([]store.Due, string, error) {
	if err := store.CheckPageSize(pageSize); err != nil {
		return nil, "", err
	}
	cursor := ""
	if pageToken != "" {
		c, err := store.DecodeDueCursor(pageToken)
		if err != nil {
			return nil, "", err
		}
		cursor = renewSK(c.RenewTime, c.Name)
	}
	// Index entries due before the bound sort below the bound's own millisecond.
	upper := dynamo.SortableMillis(before)
	var out []store.Due
	for len(out) < pageSize {
		want := pageSize - len(out)
		cond, values := "renew_pk = :pk AND renew_sk < :upper", map[string]types.AttributeValue{":pk": dynamo.S(renewPK), ":upper": dynamo.S(upper)}
		if cursor != "" {
			// One key condition per sort key: start after the cursor, stop at the bound below.
			cond, values = "renew_pk = :pk AND renew_sk > :cursor", map[string]types.AttributeValue{":pk": dynamo.S(renewPK), ":cursor": dynamo.S(cursor)}
		}
		res, err := s.t.Client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.t.Name),
			IndexName:                 aws.String(dynamo.IndexRenew),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeValues: values,
			Limit:                     aws.Int32(int32(want)),
		})
		if err != nil {
			return nil, "", dynamo.Wrap(ctx, "read expiry index", err)
		}
		var names []string
		var last string
		ended := res.LastEvaluatedKey == nil
		for _, k := range res.Items {
			sk := dynamo.StringAttr(k, dynamo.AttrRenewSK)
			if sk >= upper {
				ended = true
				break
			}
			names = append(names, dynamo.StringAttr(k, dynamo.AttrPK))
			last = sk
		}
		if len(names) > 0 {
			due, err := s.recheck(ctx, names, before)
			if err != nil {
				return nil, "", err
			}
			out = append(out, due...)
			cursor = last
		}
		if ended {
			return out, "", nil
		}
	}
	ms, name, _ := strings.Cut(cursor, "#")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return nil, "", fmt.Errorf("expiry index entry %q: %w", cursor, err)
	}
	return out, store.EncodeDueCursor(store.DueCursor{RenewTime: time.UnixMilli(n), Name: name}), nil
}

// recheck reads the candidates' records (consistently) and returns, in the given order,
// those that exist and are due before the bound.
func (s *Store) recheck(ctx context.Context, names []string, before time.Time) ([]store.Due, error) {
	records, err := s.t.BatchGet(ctx, names, skCert)
	if err != nil {
		return nil, err
	}
	bound := before.UnixMilli()
	var out []store.Due
	for _, name := range names {
		item, ok := records[name]
		if !ok {
			continue
		}
		c, err := decodeCert(name, item)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c.RenewTime.UnixMilli() < bound {
			out = append(out, store.Due{Name: name, Version: c.Version, NotAfter: c.NotAfter, RenewTime: c.RenewTime})
		}
	}
	return out, nil
}
