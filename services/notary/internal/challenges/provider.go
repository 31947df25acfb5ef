package challenges

import (
	"context"
	"fmt"
	"time"

	"github.com/portico-dev/portico/pkg/hostname"
)

// Provider is lego's HTTP-01 challenge provider: it presents tokens by storing them,
// for whichever replica (or gateway) receives the CA's request.
type Provider struct {
	Store Store
	// TTL bounds how long a token is kept should CleanUp never run (a killed process).
	TTL time.Duration
	// Policy normalizes the domain the way the handler normalizes the request's Host.
	Policy hostname.Policy
}

// Present stores the key authorization of token for domain.
func (p *Provider) Present(ctx context.Context, domain, token, keyAuth string) error {
	host, err := p.Policy.Normalize(domain)
	if err != nil {
		return fmt.Errorf("present HTTP-01 token: %w", err)
	}
	return p.Store.Put(ctx, Entry{Kind: KindACME, Name: token, Host: host, Content: keyAuth}, p.TTL)
}

// CleanUp removes the token.
func (p *Provider) CleanUp(ctx context.Context, _, token, _ string) error {
	return p.Store.Delete(ctx, KindACME, token)
}
