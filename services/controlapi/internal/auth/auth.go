// Package auth authenticates control API callers by bearer key and says who they are.
//
// Two kinds of key exist: the operator's admin key (from configuration, compared in
// constant time) and tenant API keys (random, "ptk_" + base32 of 32 bytes, shown once;
// only their SHA-256 is stored and looked up). Every gRPC call passes Interceptor, which
// reads `authorization: Bearer <key>` from the metadata (grpc-gateway forwards the HTTP
// header there, so the JSON API is covered too), resolves it to a Principal, applies the
// per-service rule (TenantService: admin only; DomainService: admin or tenant) and puts
// the Principal in the call's context for the handlers. A method that no rule names is
// refused, so a new RPC fails closed until someone decides who may call it.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/pkg/logging"
)

// Principal is an authenticated caller.
type Principal struct {
	// Admin is the operator (the admin key).
	Admin bool
	// TenantID is the tenant whose key was presented; empty for the admin.
	TenantID string
}

// String names the principal for logs ("admin" or "tenant:<id>").
func (p Principal) String() string {
	if p.Admin {
		return "admin"
	}
	return "tenant:" + p.TenantID
}

// Access is who may call a group of methods.
type Access uint8

const (
	// AdminOnly methods take the admin key only.
	AdminOnly Access = iota + 1
	// AdminOrTenant methods take the admin key or any tenant's key.
	AdminOrTenant
	// Public methods take no key (health).
	Public
)

// KeyResolver finds the tenant of a key hash (domains.TenantStore satisfies it).
type KeyResolver interface {
	TenantByKeyHash(ctx context.Context, keyHash string) (domains.Tenant, error)
}

// Authenticator resolves bearer keys.
type Authenticator struct {
	log       *zap.Logger
	adminHash []byte // SHA-256 of the admin key; nil when none is configured
	tenants   KeyResolver
	rules     map[string]Access // full method or "/pkg.Service/" prefix
}

// New returns an Authenticator. adminKey may be empty: then no call is admin, and the
// AdminOnly methods refuse everything. rules maps a full method or a service prefix
// ("/portico.control.v1.TenantService/") to its Access.
func New(log *zap.Logger, adminKey string, tenants KeyResolver, rules map[string]Access) *Authenticator {
	a := &Authenticator{log: log, tenants: tenants, rules: rules}
	if adminKey != "" {
		sum := sha256.Sum256([]byte(adminKey))
		a.adminHash = sum[:]
	}
	return a
}

// Authenticate resolves the value of an Authorization header (or metadata entry).
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if authorization == "" {
		return Principal{}, errkind.New(errkind.Unauthenticated, "missing credentials: send the header Authorization: Bearer <key>")
	}
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return Principal{}, errkind.New(errkind.Unauthenticated, "malformed credentials: send the header Authorization: Bearer <key>")
	}
	if a.isAdmin(key) {
		return Principal{Admin: true}, nil
	}
	if !wellFormedKey(key) {
		return Principal{}, errInvalidKey
	}
	t, err := a.tenants.TenantByKeyHash(ctx, HashKey(key))
	switch {
	case errors.Is(err, domains.ErrNotFound):
		return Principal{}, errInvalidKey
	case err != nil:
		return Principal{}, errkind.Wrap(errkind.Unavailable, err, "cannot check the API key now; retry")
	}
	return Principal{TenantID: t.ID}, nil
}

var errInvalidKey = errkind.New(errkind.Unauthenticated, "invalid API key")

// isAdmin compares hashes in constant time: equal lengths, so neither the key's content
// nor its length leaks through timing.
func (a *Authenticator) isAdmin(key string) bool {
	if a.adminHash == nil {
		return false
	}
	sum := sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(sum[:], a.adminHash) == 1
}

// HasAdminKey reports whether an admin key is configured.
func (a *Authenticator) HasAdminKey() bool { return a.adminHash != nil }

func (a *Authenticator) access(method string) (Access, bool) {
	if acc, ok := a.rules[method]; ok {
		return acc, true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		acc, ok := a.rules[method[:i+1]]
		return acc, ok
	}
	return 0, false
}

// authorize authenticates the call's metadata and applies the method's rule.
func (a *Authenticator) authorize(ctx context.Context, method string) (context.Context, error) {
	acc, listed := a.access(method)
	if !listed {
		return nil, errkind.New(errkind.PermissionDenied, "%s is not open to any caller", method)
	}
	if acc == Public {
		return ctx, nil
	}
	if acc == AdminOnly && a.adminHash == nil {
		return nil, errkind.New(errkind.Unauthenticated, "no admin key is configured on this server: the tenant API is closed")
	}
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	p, err := a.Authenticate(ctx, header)
	if err != nil {
		return nil, err
	}
	if acc == AdminOnly && !p.Admin {
		a.log.Warn("tenant key used on an admin method", logging.TenantID(p.TenantID), zap.String("grpc.method", method))
		return nil, errkind.New(errkind.PermissionDenied, "this method needs the admin key")
	}
	return context.WithValue(ctx, principalKey{}, p), nil
}

// Interceptor authenticates and authorizes every unary call.
func (a *Authenticator) Interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor refuses streams on non-public methods: the control API has none,
// and a stream added later must decide its own rule first.
func (a *Authenticator) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if acc, ok := a.access(info.FullMethod); !ok || acc != Public {
		return errkind.New(errkind.PermissionDenied, "%s is not open to any caller", info.FullMethod)
	}
	return handler(srv, ss)
}

type principalKey struct{}

// FromContext returns the Principal the interceptor stored. ok is false outside an
// authenticated call; handlers must then refuse.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p, for tests of handlers without the interceptor.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
