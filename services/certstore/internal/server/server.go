// Package server implements certstore's two gRPC services on top of the record store,
// the secrets backend (through its cache) and the change log:
//
//   - CertReadService for gateways: Lookup (exact name, then the wildcard one label up;
//     the route of the name, else of the certificate's name; NOT_FOUND without a
//     certificate or without any route) and Watch;
//   - CertWriteService for the notary and controlapi: certificates with their keys
//     (fencing-checked), routes, and the renewal listing.
//
// A put seals the key first, switches the record atomically to the new version, then
// removes the previous key, then announces the change; see docs/certstore.md for what a
// crash between the steps leaves. Who may call which service is decided by the mTLS
// allow-list of the server builder, not here.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/services/certstore/internal/certinput"
	"github.com/portico-dev/portico/services/certstore/internal/secrets"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
)

// ChangeLog records changes for watchers (watch.Log).
type ChangeLog interface {
	Append(ctx context.Context, kind certstorev1.ChangeKind, name string) (string, error)
}

// Feed streams changes to one watcher (watch.Hub).
type Feed interface {
	Watch(ctx context.Context, after string, send func(watch.Change) error) error
}

// Deps are what the services work on.
type Deps struct {
	Store   store.Store
	Keys    *secrets.Cache
	Changes ChangeLog
	Feed    Feed
	// ExtraTLDs are passed to the hostname policy (-hostname-extra-tlds).
	ExtraTLDs []string
	Log       *zap.Logger
	// Now is the clock for certificate validity (time.Now if nil).
	Now func() time.Time
}

// DefaultPageSize is ListDue's page size when the request leaves it at 0.
const DefaultPageSize = 100

// Read is CertReadService.
type Read struct {
	certstorev1.UnimplementedCertReadServiceServer
	d     Deps
	exact hostname.Policy
}

// Write is CertWriteService.
type Write struct {
	certstorev1.UnimplementedCertWriteServiceServer
	d    Deps
	wild hostname.Policy
}

// New returns the two services.
func New(d Deps) (*Read, *Write) {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Read{d: d, exact: hostname.Policy{ExtraTLDs: d.ExtraTLDs}},
		&Write{d: d, wild: hostname.Policy{AllowWildcard: true, ExtraTLDs: d.ExtraTLDs}}
}

// parseName normalizes a hostname field or says why it is not one.
func parseName(p hostname.Policy, field, s string) (string, error) {
	n, err := p.Parse(s)
	if err != nil {
		var he *hostname.Error
		if errors.As(err, &he) {
			return "", errkind.Invalid(field, string(he.Rule), "%s", he.Detail)
		}
		return "", errkind.Invalid(field, "invalid", "%v", err)
	}
	return n.ASCII, nil
}

// storeError maps a store error (other than the sentinels a method handles itself).
func storeError(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errkind.Wrap(errkind.Unavailable, err, "record store unavailable (%s)", what)
}

// lookupAttempts bounds how often Lookup re-reads a record whose key was replaced
// between reading the record and opening the key.
const lookupAttempts = 3

// Lookup answers a gateway: certificate, key and route for a hostname.
func (r *Read) Lookup(ctx context.Context, req *certstorev1.LookupRequest) (*certstorev1.LookupResponse, error) {
	name, err := parseName(r.exact, "hostname", req.GetHostname())
	if err != nil {
		return nil, err
	}
	for range lookupAttempts {
		c, match, route, err := r.find(ctx, name)
		if err != nil {
			return nil, err
		}
		key, err := r.d.Keys.Open(ctx, c.Name, c.KeyRef)
		if errors.Is(err, secrets.ErrNotFound) {
			continue // a newer put removed this key after we read the record: read again
		}
		if err != nil {
			return nil, errkind.Wrap(errkind.Unavailable, err, "private key of %s unavailable", c.Name)
		}
		return &certstorev1.LookupResponse{
			CertificateChain: c.Chain,
			PrivateKey:       key,
			NotAfter:         timestamppb.New(c.NotAfter),
			Version:          c.Version,
			Match:            match,
			CertificateName:  c.Name,
			Route:            routeToProto(route),
		}, nil
	}
	return nil, errkind.New(errkind.Unavailable, "the certificate of %s kept changing while it was read; retry", name)
}

// find returns the certificate serving name (its own, else the wildcard one label up)
// and the route (the name's own, else the certificate name's). One round trip when the
// name has its own certificate, two for a wildcard match.
func (r *Read) find(ctx context.Context, name string) (store.Certificate, certstorev1.MatchKind, store.Route, error) {
	own, err := r.d.Store.GetServing(ctx, name)
	if err != nil {
		return store.Certificate{}, 0, store.Route{}, storeError(err, "certificate and route")
	}
	cert, route, match := own.Certificate, own.Route, certstorev1.MatchKind_MATCH_KIND_EXACT
	if cert == nil {
		parent, ok := hostname.Parent(name)
		if !ok {
			return store.Certificate{}, 0, store.Route{}, errkind.New(errkind.NotFound, "no certificate serves %s", name)
		}
		wild, err := r.d.Store.GetServing(ctx, parent)
		if err != nil {
			return store.Certificate{}, 0, store.Route{}, storeError(err, "certificate and route")
		}
		if wild.Certificate == nil {
			return store.Certificate{}, 0, store.Route{}, errkind.New(errkind.NotFound, "no certificate serves %s", name)
		}
		cert, match = wild.Certificate, certstorev1.MatchKind_MATCH_KIND_WILDCARD
		if route == nil {
			route = wild.Route
		}
	}
	if route == nil {
		return store.Certificate{}, 0, store.Route{}, errkind.New(errkind.NotFound, "%s has no route: it is not served", name)
	}
	return *cert, match, *route, nil
}

func routeToProto(r store.Route) *certstorev1.Route {
	return &certstorev1.Route{Hostname: r.Hostname, TenantId: r.TenantID, Upstream: r.Upstream, RedirectHttps: r.RedirectHTTPS}
}

// Watch streams changes to a gateway.
func (r *Read) Watch(req *certstorev1.WatchRequest, stream certstorev1.CertReadService_WatchServer) error {
	// Headers go out at once, so a watcher can tell the stream is established
	// (stream.Header returns) before the first change, which may be long in coming when
	// it resumes from a current revision.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	err := r.d.Feed.Watch(stream.Context(), req.GetAfterRevision(), func(c watch.Change) error {
		return stream.Send(&certstorev1.WatchResponse{Revision: c.Revision, Kind: c.Kind, Hostname: c.Name})
	})
	switch {
	case errors.Is(err, watch.ErrBadRevision):
		return errkind.Invalid("after_revision", "revision", "%q is not a revision from a WatchResponse", req.GetAfterRevision())
	case errors.Is(err, watch.ErrClosed):
		return errkind.New(errkind.Unavailable, "certstore is shutting down; reconnect with the last revision")
	case err != nil && stream.Context().Err() == nil:
		return errkind.Wrap(errkind.Unavailable, err, "change feed unavailable")
	}
	return err
}

// caller names the authenticated caller for audit entries.
func caller(ctx context.Context) zap.Field {
	id, ok := mtls.PeerIdentity(ctx, mtls.DefaultTrustDomain)
	if !ok {
		id = "unauthenticated (plaintext)"
	}
	return logging.Identity(id)
}

// announce appends a change after a write took effect, even if the caller has gone
// away meanwhile (the write stands, so watchers must hear of it). A failure is returned
// to the writer as UNAVAILABLE: retrying the write announces it again.
func (w *Write) announce(ctx context.Context, kind certstorev1.ChangeKind, name, what string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := w.d.Changes.Append(actx, kind, name); err != nil {
		return errkind.Wrap(errkind.Unavailable, err, "%s took effect but watchers were not told; retry the call", what)
	}
	return nil
}

// PutCertificate stores a certificate with its key.
func (w *Write) PutCertificate(ctx context.Context, req *certstorev1.PutCertificateRequest) (*certstorev1.PutCertificateResponse, error) {
	in := certinput.Input{
		Hostname:     req.GetHostname(),
		Chain:        req.GetCertificateChain(),
		PrivateKey:   req.GetPrivateKey(),
		FencingToken: req.GetFencingToken(),
	}
	if req.RenewTime != nil {
		if err := req.GetRenewTime().CheckValid(); err != nil {
			return nil, errkind.Invalid("renew_time", "timestamp", "is not a valid timestamp")
		}
		t := req.GetRenewTime().AsTime()
		in.RenewTime = &t
	}
	checked, err := certinput.Check(w.wild, in, w.d.Now())
	if err != nil {
		return nil, err
	}
	name := checked.Name
	backend := w.d.Keys.Backend()
	// 1. The key first: nothing refers to it until the record switches.
	ref, err := backend.Seal(ctx, name, req.GetPrivateKey())
	if err != nil {
		return nil, errkind.Wrap(errkind.Unavailable, err, "secrets backend unavailable")
	}
	// 2. The atomic switch.
	stored, replaced, err := w.d.Store.PutCertificate(ctx, store.Certificate{
		Name:         name,
		Chain:        req.GetCertificateChain(),
		KeyRef:       ref,
		NotAfter:     checked.NotAfter,
		RenewTime:    checked.RenewTime,
		FencingToken: req.GetFencingToken(),
	})
	if err != nil {
		w.removeKey(ctx, name, ref, "unused key of a refused put")
		if errors.Is(err, store.ErrStaleFencing) {
			return nil, errkind.Wrap(errkind.FailedPrecondition, err, "fencing token %d is lower than the one stored for %s: a newer writer holds the domain", req.GetFencingToken(), name)
		}
		return nil, storeError(err, "certificate")
	}
	// 3. The previous key, only now that no record refers to it.
	if replaced != nil {
		w.removeKey(ctx, name, replaced, "replaced key")
		w.d.Keys.Forget(name, replaced)
	}
	logging.Audit(w.d.Log, "certificate stored", logging.Hostname(name), zap.Int64(logging.KeyVersion, stored.Version),
		zap.Time("not_after", stored.NotAfter), caller(ctx))
	// 4. Tell the watchers.
	if err := w.announce(ctx, certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT, name, fmt.Sprintf("version %d of %s", stored.Version, name)); err != nil {
		return nil, err
	}
	return &certstorev1.PutCertificateResponse{
		Version:   stored.Version,
		NotAfter:  timestamppb.New(stored.NotAfter),
		RenewTime: timestamppb.New(stored.RenewTime),
	}, nil
}

// removeKey removes a key the record no longer refers to. A failure leaves an orphan
// in the secrets backend (never a served key), so it is logged, not returned.
func (w *Write) removeKey(ctx context.Context, name string, ref []byte, what string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.d.Keys.Backend().Remove(rctx, name, ref); err != nil {
		w.d.Log.Warn("could not remove a private key from the secrets backend; it is orphaned, not served",
			logging.Hostname(name), zap.String("what", what), zap.Error(err))
	}
}

// GetCertificate returns the chain and facts of a certificate, never its key.
func (w *Write) GetCertificate(ctx context.Context, req *certstorev1.GetCertificateRequest) (*certstorev1.GetCertificateResponse, error) {
	name, err := parseName(w.wild, "hostname", req.GetHostname())
	if err != nil {
		return nil, err
	}
	c, err := w.d.Store.GetCertificate(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errkind.New(errkind.NotFound, "no certificate is stored for %s", name)
	}
	if err != nil {
		return nil, storeError(err, "certificate")
	}
	return &certstorev1.GetCertificateResponse{
		CertificateChain: c.Chain,
		Version:          c.Version,
		NotAfter:         timestamppb.New(c.NotAfter),
		RenewTime:        timestamppb.New(c.RenewTime),
		FencingToken:     c.FencingToken,
	}, nil
}

// DeleteCertificate removes a certificate, then its key.
func (w *Write) DeleteCertificate(ctx context.Context, req *certstorev1.DeleteCertificateRequest) (*certstorev1.DeleteCertificateResponse, error) {
	name, err := parseName(w.wild, "hostname", req.GetHostname())
	if err != nil {
		return nil, err
	}
	if req.GetFencingToken() < 0 {
		return nil, errkind.Invalid("fencing_token", "non-negative", "must be zero or more")
	}
	ref, err := w.d.Store.DeleteCertificate(ctx, name, req.GetFencingToken())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errkind.New(errkind.NotFound, "no certificate is stored for %s", name)
	case errors.Is(err, store.ErrStaleFencing):
		return nil, errkind.Wrap(errkind.FailedPrecondition, err, "fencing token %d is lower than the one stored for %s", req.GetFencingToken(), name)
	case err != nil:
		return nil, storeError(err, "certificate")
	}
	w.removeKey(ctx, name, ref, "deleted certificate's key")
	w.d.Keys.Forget(name, ref)
	logging.Audit(w.d.Log, "certificate deleted", logging.Hostname(name), caller(ctx))
	if err := w.announce(ctx, certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_DELETED, name, "the deletion of "+name); err != nil {
		return nil, err
	}
	return &certstorev1.DeleteCertificateResponse{}, nil
}

// SetRoute creates or replaces a route.
func (w *Write) SetRoute(ctx context.Context, req *certstorev1.SetRouteRequest) (*certstorev1.SetRouteResponse, error) {
	r := req.GetRoute()
	if r == nil {
		return nil, errkind.Invalid("route", "required", "is required")
	}
	var vs []errkind.FieldViolation
	name, err := parseName(w.wild, "route.hostname", r.GetHostname())
	var e *errkind.Error
	if errors.As(err, &e) {
		vs = append(vs, e.Violations...)
	}
	if r.GetTenantId() == "" {
		vs = append(vs, errkind.FieldViolation{Field: "route.tenant_id", Rule: "required", Description: "is required"})
	}
	if u := r.GetUpstream(); u != "" {
		if msg := checkUpstream(u); msg != "" {
			vs = append(vs, errkind.FieldViolation{Field: "route.upstream", Rule: "host-port", Description: msg})
		}
	}
	if err := errkind.InvalidFields(vs...); err != nil {
		return nil, err
	}
	route := store.Route{Hostname: name, TenantID: r.GetTenantId(), Upstream: r.GetUpstream(), RedirectHTTPS: r.GetRedirectHttps()}
	if err := w.d.Store.SetRoute(ctx, route); err != nil {
		return nil, storeError(err, "route")
	}
	if err := w.announce(ctx, certstorev1.ChangeKind_CHANGE_KIND_ROUTE_CHANGED, name, "the route of "+name); err != nil {
		return nil, err
	}
	return &certstorev1.SetRouteResponse{}, nil
}

// checkUpstream returns why u is not host:port, or "".
func checkUpstream(u string) string {
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", u)
	}
	if host == "" {
		return fmt.Sprintf("%q has no host", u)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port must be 1 to 65535", u)
	}
	return ""
}

// DeleteRoute removes a route: the domain left the edge.
func (w *Write) DeleteRoute(ctx context.Context, req *certstorev1.DeleteRouteRequest) (*certstorev1.DeleteRouteResponse, error) {
	name, err := parseName(w.wild, "hostname", req.GetHostname())
	if err != nil {
		return nil, err
	}
	if err := w.d.Store.DeleteRoute(ctx, name); errors.Is(err, store.ErrNotFound) {
		return nil, errkind.New(errkind.NotFound, "%s has no route", name)
	} else if err != nil {
		return nil, storeError(err, "route")
	}
	if err := w.announce(ctx, certstorev1.ChangeKind_CHANGE_KIND_DOMAIN_REMOVED, name, "the removal of "+name); err != nil {
		return nil, err
	}
	return &certstorev1.DeleteRouteResponse{}, nil
}

// ListDue lists certificates due for renewal.
func (w *Write) ListDue(ctx context.Context, req *certstorev1.ListDueRequest) (*certstorev1.ListDueResponse, error) {
	var vs []errkind.FieldViolation
	if req.Before == nil {
		vs = append(vs, errkind.FieldViolation{Field: "before", Rule: "required", Description: "is required"})
	} else if err := req.GetBefore().CheckValid(); err != nil {
		vs = append(vs, errkind.FieldViolation{Field: "before", Rule: "timestamp", Description: "is not a valid timestamp"})
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = DefaultPageSize
	}
	if size < 1 || size > store.MaxPageSize {
		vs = append(vs, errkind.FieldViolation{Field: "page_size", Rule: "range", Description: fmt.Sprintf("must be 1 to %d (0 means %d)", store.MaxPageSize, DefaultPageSize)})
	}
	if err := errkind.InvalidFields(vs...); err != nil {
		return nil, err
	}
	due, next, err := w.d.Store.ListDue(ctx, req.GetBefore().AsTime(), size, req.GetPageToken())
	if errors.Is(err, store.ErrBadPageToken) {
		return nil, errkind.Invalid("page_token", "page-token", "is not a token from a previous ListDue response")
	}
	if err != nil {
		return nil, storeError(err, "expiry index")
	}
	resp := &certstorev1.ListDueResponse{NextPageToken: next}
	for _, d := range due {
		resp.Certificates = append(resp.Certificates, &certstorev1.DueCertificate{
			Hostname:  d.Name,
			Version:   d.Version,
			NotAfter:  timestamppb.New(d.NotAfter),
			RenewTime: timestamppb.New(d.RenewTime),
		})
	}
	return resp, nil
}
