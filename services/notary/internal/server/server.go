// Package server is the notary's gRPC API (portico.notary.v1.NotaryService), called by
// controlapi: start on a new domain, check ownership now, report progress. The work
// itself is the worker's; these calls make it happen sooner and report what happened.
package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/errkind"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/hostname"
)

// Worker is what the API drives (worker.Worker).
type Worker interface {
	Enqueue(ctx context.Context, host string) (domains.Domain, error)
	VerifyNow(ctx context.Context, host string) (domains.Domain, error)
}

// Server implements NotaryService.
type Server struct {
	notaryv1.UnimplementedNotaryServiceServer
	Worker Worker
	Store  domains.DomainStore
	// Policy normalizes hostnames (wildcards allowed).
	Policy hostname.Policy
	// VerifyTimeout bounds VerifyDomain's synchronous check (default 15 s).
	VerifyTimeout time.Duration
}

var _ notaryv1.NotaryServiceServer = (*Server)(nil)

// EnqueueDomain implements NotaryService.
func (s *Server) EnqueueDomain(ctx context.Context, req *notaryv1.EnqueueDomainRequest) (*notaryv1.EnqueueDomainResponse, error) {
	host, err := s.hostname(req.GetHostname())
	if err != nil {
		return nil, err
	}
	d, err := s.Worker.Enqueue(ctx, host)
	if err != nil {
		return nil, s.storeError(err)
	}
	return &notaryv1.EnqueueDomainResponse{Progress: progress(d)}, nil
}

// VerifyDomain implements NotaryService.
func (s *Server) VerifyDomain(ctx context.Context, req *notaryv1.VerifyDomainRequest) (*notaryv1.VerifyDomainResponse, error) {
	host, err := s.hostname(req.GetHostname())
	if err != nil {
		return nil, err
	}
	timeout := s.VerifyTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := s.Worker.VerifyNow(vctx, host)
	if err != nil {
		return nil, s.storeError(err)
	}
	return &notaryv1.VerifyDomainResponse{Progress: progress(d)}, nil
}

// GetDomainProgress implements NotaryService.
func (s *Server) GetDomainProgress(ctx context.Context, req *notaryv1.GetDomainProgressRequest) (*notaryv1.GetDomainProgressResponse, error) {
	host, err := s.hostname(req.GetHostname())
	if err != nil {
		return nil, err
	}
	d, err := s.Store.GetDomain(ctx, host)
	if err != nil {
		return nil, s.storeError(err)
	}
	return &notaryv1.GetDomainProgressResponse{Progress: progress(d)}, nil
}

func (s *Server) hostname(raw string) (string, error) {
	p := s.Policy
	p.AllowWildcard = true
	name, err := p.Normalize(raw)
	if err != nil {
		var he *hostname.Error
		if errors.As(err, &he) {
			return "", errkind.Invalid("hostname", string(he.Rule), "%s", he.Detail)
		}
		return "", errkind.Invalid("hostname", "invalid", "%v", err)
	}
	return name, nil
}

func (s *Server) storeError(err error) error {
	switch {
	case errors.Is(err, domains.ErrNotFound):
		return errkind.New(errkind.NotFound, "domain not found")
	case errors.Is(err, context.DeadlineExceeded):
		return errkind.Wrap(errkind.DeadlineExceeded, err, "the check did not finish in time; it goes on in the background")
	}
	return err
}

func progress(d domains.Domain) *notaryv1.DomainProgress {
	p := &notaryv1.DomainProgress{
		Hostname:  d.Hostname,
		Status:    controlv1.DomainStatus(d.Status),
		LastError: d.LastError,
		CoveredBy: d.CoveredBy,
	}
	if !d.NextAttemptAt.IsZero() {
		p.NextAttemptTime = timestamppb.New(d.NextAttemptAt)
	}
	return p
}
