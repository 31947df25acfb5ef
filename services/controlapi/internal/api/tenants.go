package api

import (
	"context"
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/errkind"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/controlapi/internal/auth"
)

// tenantServer is TenantService. The interceptor lets only the admin key through.
type tenantServer struct {
	controlv1.UnimplementedTenantServiceServer
	s *Service
}

// tenantIDPattern: lowercase letters, digits and hyphens, 1 to 63, no hyphen at either
// end (so an ID is also a valid DNS label, should anyone need one).
var tenantIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxDisplayName is in characters.
const maxDisplayName = 200

func checkTenantID(field, id string, required bool) *errkind.FieldViolation {
	switch {
	case id == "" && required:
		return &errkind.FieldViolation{Field: field, Rule: "required", Description: "is required"}
	case id == "":
		return nil
	case !tenantIDPattern.MatchString(id):
		return &errkind.FieldViolation{Field: field, Rule: "tenant-id-form", Description: "must be 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit"}
	}
	return nil
}

func checkDisplayName(name string) *errkind.FieldViolation {
	switch {
	case !utf8.ValidString(name):
		return &errkind.FieldViolation{Field: "display_name", Rule: "utf8", Description: "is not valid UTF-8"}
	case utf8.RuneCountInString(name) > maxDisplayName:
		return &errkind.FieldViolation{Field: "display_name", Rule: "too-long", Description: "is longer than 200 characters"}
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return &errkind.FieldViolation{Field: "display_name", Rule: "control-character", Description: "contains a control character"}
	}
	return nil
}

func violations(vs ...*errkind.FieldViolation) error {
	var out []errkind.FieldViolation
	for _, v := range vs {
		if v != nil {
			out = append(out, *v)
		}
	}
	return errkind.InvalidFields(out...)
}

// newTenantID is "t" and 20 base32 characters (100 random bits).
func newTenantID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return "t" + string(b)
}

func tenantProto(t domains.Tenant) *controlv1.Tenant {
	return &controlv1.Tenant{
		Id:            t.ID,
		DisplayName:   t.DisplayName,
		CreateTime:    timestamp(t.CreatedAt),
		KeyRotateTime: timestamp(t.KeyRotatedAt),
	}
}

func tenantNotFound(id string) error {
	return errkind.New(errkind.NotFound, "tenant %q not found", id)
}

func (ts *tenantServer) CreateTenant(ctx context.Context, req *controlv1.CreateTenantRequest) (*controlv1.CreateTenantResponse, error) {
	s := ts.s
	if err := violations(checkTenantID("tenant_id", req.GetTenantId(), false), checkDisplayName(req.GetDisplayName())); err != nil {
		return nil, err
	}
	id := req.GetTenantId()
	if id == "" {
		id = newTenantID()
	}
	key, hash := auth.NewKey()
	now := s.now()
	t := domains.Tenant{ID: id, DisplayName: req.GetDisplayName(), KeyHash: hash, CreatedAt: now, KeyRotatedAt: now}
	if err := s.store.CreateTenant(ctx, t); err != nil {
		if errors.Is(err, domains.ErrAlreadyExists) {
			return nil, errkind.Wrap(errkind.AlreadyExists, err, "tenant %q already exists", id)
		}
		return nil, err
	}
	logging.Audit(s.log, "tenant.created", logging.TenantID(id), logging.Identity("admin"))
	return &controlv1.CreateTenantResponse{Tenant: tenantProto(t), ApiKey: key}, nil
}

func (ts *tenantServer) GetTenant(ctx context.Context, req *controlv1.GetTenantRequest) (*controlv1.GetTenantResponse, error) {
	if err := violations(checkTenantID("tenant_id", req.GetTenantId(), true)); err != nil {
		return nil, err
	}
	t, err := ts.s.store.GetTenant(ctx, req.GetTenantId())
	if errors.Is(err, domains.ErrNotFound) {
		return nil, tenantNotFound(req.GetTenantId())
	} else if err != nil {
		return nil, err
	}
	return &controlv1.GetTenantResponse{Tenant: tenantProto(t)}, nil
}

func (ts *tenantServer) ListTenants(ctx context.Context, req *controlv1.ListTenantsRequest) (*controlv1.ListTenantsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q := pageQuery{Kind: "tenants"}
	after, err := q.decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	page, err := ts.s.store.ListTenants(ctx, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &controlv1.ListTenantsResponse{}
	if len(page) > size {
		page = page[:size]
		resp.NextPageToken = q.encode(page[size-1].ID)
	}
	for _, t := range page {
		resp.Tenants = append(resp.Tenants, tenantProto(t))
	}
	return resp, nil
}

func (ts *tenantServer) RotateTenantKey(ctx context.Context, req *controlv1.RotateTenantKeyRequest) (*controlv1.RotateTenantKeyResponse, error) {
	s := ts.s
	if err := violations(checkTenantID("tenant_id", req.GetTenantId(), true)); err != nil {
		return nil, err
	}
	key, hash := auth.NewKey()
	t, err := s.store.RotateTenantKey(ctx, req.GetTenantId(), hash, s.now())
	if errors.Is(err, domains.ErrNotFound) {
		return nil, tenantNotFound(req.GetTenantId())
	} else if err != nil {
		return nil, err
	}
	logging.Audit(s.log, "tenant.key_rotated", logging.TenantID(t.ID), logging.Identity("admin"))
	return &controlv1.RotateTenantKeyResponse{Tenant: tenantProto(t), ApiKey: key}, nil
}

// DeleteTenant locks the tenant out (its key is replaced by one nobody holds), moves each
// of its domains to DELETING and off the edge, deletes the tenant, then sweeps once more
// for domains created by calls that were already in flight when the key stopped working.
func (ts *tenantServer) DeleteTenant(ctx context.Context, req *controlv1.DeleteTenantRequest) (*controlv1.DeleteTenantResponse, error) {
	s := ts.s
	id := req.GetTenantId()
	if err := violations(checkTenantID("tenant_id", id, true)); err != nil {
		return nil, err
	}
	_, lockHash := auth.NewKey() // the key itself is dropped: nobody can present it
	if _, err := s.store.RotateTenantKey(ctx, id, lockHash, s.now()); errors.Is(err, domains.ErrNotFound) {
		return nil, tenantNotFound(id)
	} else if err != nil {
		return nil, err
	}
	// The rest must not stop half-way because the caller went away.
	ctx = context.WithoutCancel(ctx)
	retired, err := s.retireTenantDomains(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteTenant(ctx, id); err != nil && !errors.Is(err, domains.ErrNotFound) {
		return nil, err
	}
	late, err := s.retireTenantDomains(ctx, id)
	if err != nil {
		return nil, err
	}
	logging.Audit(s.log, "tenant.deleted", logging.TenantID(id), logging.Identity("admin"), zap.Int("domains", retired+late))
	return &controlv1.DeleteTenantResponse{}, nil
}

// timestamp leaves a zero time unset, as the protos ask.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
