// Package delegation is the notary's side of the one-time CNAME delegation that lets it
// answer DNS-01 challenges for wildcard domains.
//
// A customer publishes `_acme-challenge.<domain> CNAME <label>.<zone>` once, where zone
// is the platform's delegation zone (-delegation-zone) and label is the domain's
// DelegationLabel (random, unguessable, unique per claim; controlapi chooses it). From
// then on the CA, looking for the TXT record at `_acme-challenge.<domain>`, follows the
// CNAME into the zone, where the notary writes the answers of every issuance and renewal.
//
// The zone is written by one of two writers, chosen by configuration:
//
//   - the built-in authoritative DNS server (Server) for platforms that delegate the
//     zone to Portico: answers live in a Store shared by every replica, so whichever
//     replica the CA's resolver asks gives the same answer; Provider writes them;
//   - one of lego's DNS providers writing into a zone the operator already hosts
//     (package dnsproviders).
//
// # Store contract
//
//   - Add adds value to the TXT set at label and keeps it for ttl unless removed; adding
//     a value already there keeps one copy and extends its life to the later expiry.
//     Several values may be at one label at once (the apex and the wildcard of one
//     order share `_acme-challenge.<domain>`, and so one label).
//   - Values returns the unexpired values at label in lexical order, and an empty slice
//     (not an error) when there are none.
//   - Remove removes one value; removing a value that is not there is not an error.
//   - Labels are lowercase DNS labels (the server lowercases the question before asking).
//   - Every method honours ctx and is safe for concurrent use by many processes.
//
// Implementations: memdelegation (tests), redisdelegation and dynamodelegation, all
// running the contract suite in delegationtest.
package delegation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/miekg/dns"

	"github.com/portico-dev/portico/pkg/domains"
)

// Store keeps the TXT values the built-in server answers. See the package
// documentation for the contract.
type Store interface {
	Add(ctx context.Context, label, value string, ttl time.Duration) error
	Remove(ctx context.Context, label, value string) error
	Values(ctx context.Context, label string) ([]string, error)
}

// ChallengeName is the name whose TXT record the CA reads for base (`*.base` and base
// share it).
func ChallengeName(base string) string { return "_acme-challenge." + base }

// Target is the name in the delegation zone that `_acme-challenge.<base>` must CNAME
// to.
func Target(label, zone string) string { return label + "." + zone }

// Base is the name a wildcard-kind domain's certificate is built around: `example.com`
// for both `*.example.com` (WILDCARD) and `example.com` (APEX_AND_WILDCARD).
func Base(d domains.Domain) string { return strings.TrimPrefix(d.Hostname, "*.") }

// Names are the names of d's certificate, the domain's own name first: every wildcard
// kind covers the base name and its one-label subdomains.
func Names(d domains.Domain) []string {
	switch d.Kind {
	case domains.KindWildcard:
		return []string{d.Hostname, Base(d)}
	case domains.KindApexAndWildcard:
		return []string{d.Hostname, "*." + d.Hostname}
	}
	return []string{d.Hostname}
}

// ServedNames are the certstore names d's certificate and route are stored under, the
// domain's own name last (it is written last and read first, so that finding it means
// every other name was written). certstore's Lookup serves a name from its exact record,
// else from `*.<parent>`: an APEX_AND_WILDCARD domain `example.com` is therefore stored
// under `*.example.com` as well, while a WILDCARD domain is stored only under its own
// name (the apex is not what its tenant claimed).
func ServedNames(d domains.Domain) []string {
	if d.Kind == domains.KindApexAndWildcard {
		return []string{"*." + d.Hostname, d.Hostname}
	}
	return []string{d.Hostname}
}

// ErrNoDelegation: no wildcard domain with a delegation label claims the name.
var ErrNoDelegation = errors.New("no wildcard domain with a delegation label claims this name")

// Owner finds the wildcard-kind domain whose certificate is built around base: the
// WILDCARD domain `*.<base>` or the APEX_AND_WILDCARD domain `<base>`; when both exist
// (two creations raced past controlapi's check), the one claimed first, which is the
// one pre-flight lets through. ErrNoDelegation when neither exists.
func Owner(ctx context.Context, store domains.DomainStore, base string) (domains.Domain, error) {
	var found []domains.Domain
	for _, name := range []string{"*." + base, base} {
		d, err := store.GetDomain(ctx, name)
		switch {
		case errors.Is(err, domains.ErrNotFound):
		case err != nil:
			return domains.Domain{}, err
		case d.Kind == domains.KindWildcard || d.Kind == domains.KindApexAndWildcard:
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return domains.Domain{}, ErrNoDelegation
	case len(found) == 2 && claimedBefore(found[1], found[0]):
		return found[1], nil
	}
	return found[0], nil
}

// Rival returns the other wildcard-kind claim built around the same base as d when it
// was claimed before d: `*.example.com` (WILDCARD) and `example.com` (APEX_AND_WILDCARD)
// would share `_acme-challenge.example.com`, which holds one CNAME, and the certstore
// name `*.example.com`, so only the first claim is ordered. controlapi refuses the
// second claim; this settles two creations that raced. found is false when there is no
// earlier rival.
func Rival(ctx context.Context, store domains.DomainStore, d domains.Domain) (rival domains.Domain, found bool, err error) {
	other := "*." + d.Hostname
	if d.Kind == domains.KindWildcard {
		other = Base(d)
	}
	r, err := store.GetDomain(ctx, other)
	switch {
	case errors.Is(err, domains.ErrNotFound):
		return domains.Domain{}, false, nil
	case err != nil:
		return domains.Domain{}, false, err
	}
	wildcardKind := r.Kind == domains.KindWildcard || r.Kind == domains.KindApexAndWildcard
	return r, wildcardKind && claimedBefore(r, d), nil
}

// claimedBefore orders two claims: by creation time, then by hostname.
func claimedBefore(a, b domains.Domain) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.Hostname < b.Hostname
}

// TXTValue is the DNS-01 record value for a key authorization (RFC 8555 section 8.4):
// base64url, unpadded, of its SHA-256.
func TXTValue(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Provider is lego's DNS-01 provider for the built-in server: it writes the answer of
// each authorization into the Store at the domain's delegation label, for every
// replica's server to answer. The label comes from the domain record (DelegationLabel),
// not from following the customer's CNAME, so a resolver's stale answer cannot send it
// elsewhere; pre-flight has checked the CNAME already.
type Provider struct {
	Store   Store
	Domains domains.DomainStore
	// Zone is the delegation zone (lowercase, no trailing dot).
	Zone string
	// TTL bounds how long an answer is kept should CleanUp never run (a killed process).
	TTL time.Duration
}

// Present adds the answer for domain (lego passes the base name, without `*.`).
func (p *Provider) Present(ctx context.Context, domain, _, keyAuth string) error {
	label, err := p.label(ctx, domain)
	if err != nil {
		return err
	}
	return p.Store.Add(ctx, label, TXTValue(keyAuth), p.TTL)
}

// CleanUp removes the answer.
func (p *Provider) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	label, err := p.label(ctx, domain)
	if err != nil {
		return err
	}
	return p.Store.Remove(ctx, label, TXTValue(keyAuth))
}

// Timeout tells lego how long to wait for the answer to be served and how often to look
// (lego's ProviderTimeout): the store is shared, so it is served at once.
func (p *Provider) Timeout() (timeout, interval time.Duration) {
	return 30 * time.Second, 200 * time.Millisecond
}

// ServedCheck is lego's pre-check for the built-in server: before the CA is told to
// look, the answer is read back from the server at addr (this replica's listener; an
// unspecified host is asked on loopback). The store is shared, so what one replica
// serves every replica serves: no propagation to wait for.
func (p *Provider) ServedCheck(addr string) dns01.ChallengeOption {
	client := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 4096}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	return dns01.WrapPreCheck(func(ctx context.Context, domain, _, value string, _ dns01.PreCheckFunc) (bool, error) {
		label, err := p.label(ctx, domain)
		if err != nil {
			return false, err
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(Target(label, p.Zone)), dns.TypeTXT)
		m.SetEdns0(4096, false)
		resp, _, err := client.ExchangeContext(ctx, m, addr)
		if err != nil {
			return false, fmt.Errorf("the built-in DNS server at %s did not answer: %w", addr, err)
		}
		for _, rr := range resp.Answer {
			if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == value {
				return true, nil
			}
		}
		return false, nil
	})
}

func (p *Provider) label(ctx context.Context, domain string) (string, error) {
	base := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(domain), "*."), ".")
	d, err := Owner(ctx, p.Domains, base)
	if err != nil {
		return "", fmt.Errorf("DNS-01 for %s: %w", base, err)
	}
	if d.DelegationLabel == "" {
		return "", fmt.Errorf("DNS-01 for %s: %w", base, ErrNoDelegation)
	}
	return strings.ToLower(d.DelegationLabel), nil
}
