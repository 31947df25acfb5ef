// Package acmeclient obtains and renews certificates with go-acme/lego v5 for the
// notary: one ACME account per deployment (its key shared by every replica through an
// AccountKeyStore), HTTP-01 answered from the shared challenge store, DNS-01 for
// wildcard orders through the delegation zone's writer, a fresh private key per
// certificate, a named profile, ARI renewal information, and every failure classified
// for the lifecycle (Classify).
//
// An order is solved by HTTP-01 unless one of its names is a wildcard; then every name
// of the order is solved by DNS-01 (the apex of a wildcard certificate shares its
// `_acme-challenge` name). The two live in two lego clients on the one account, because
// lego picks a challenge per client, not per order.
package acmeclient

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

// Config configures the client.
type Config struct {
	// DirectoryURL is the CA's ACME directory.
	DirectoryURL string
	// Email is the account's contact; empty for none.
	Email string
	// EABKeyID and EABHMAC bind the account to an external account (base64url HMAC
	// key), when the CA requires it.
	EABKeyID, EABHMAC string
	// Profile names the certificate profile; empty lets the CA choose.
	Profile string
	// KeyType is "ec256" (default) or "rsa2048": the type of each certificate's fresh key.
	KeyType string
	// AccountKey keeps the deployment's account key.
	AccountKey AccountKeyStore
	// HTTPClient talks to the CA (its TLS roots decide whom the notary trusts).
	HTTPClient *http.Client
	// HTTP01 presents HTTP-01 tokens.
	HTTP01 challenge.Provider
	// DNS01 presents DNS-01 answers for wildcard orders; nil refuses them.
	DNS01 challenge.Provider
	// DNS01Options tune lego's DNS-01 solver (its propagation check).
	DNS01Options []dns01.ChallengeOption
	// CertificateTimeout bounds the wait for a finalized order's certificate.
	CertificateTimeout time.Duration
}

// KeyTypes are the accepted Config.KeyType values.
var KeyTypes = map[string]certcrypto.KeyType{"ec256": certcrypto.EC256, "rsa2048": certcrypto.RSA2048}

// Client is a lazily registered ACME client: the CA may be unreachable when the notary
// starts, so the account is registered on first use and again after a failure.
type Client struct {
	cfg     Config
	keyType certcrypto.KeyType
	log     *zap.Logger

	mu      sync.Mutex
	lego    *lego.Client // HTTP-01
	legoDNS *lego.Client // DNS-01, on the same account
}

// New returns a client; nothing is sent to the CA yet.
func New(cfg Config, log *zap.Logger) (*Client, error) {
	if cfg.KeyType == "" {
		cfg.KeyType = "ec256"
	}
	kt, known := KeyTypes[cfg.KeyType]
	if !known {
		return nil, fmt.Errorf("key type %q: want ec256 or rsa2048", cfg.KeyType)
	}
	if cfg.DirectoryURL == "" || cfg.AccountKey == nil || cfg.HTTP01 == nil {
		return nil, errors.New("acmeclient: directory URL, account key store and HTTP-01 provider are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: time.Minute}
	}
	if cfg.CertificateTimeout <= 0 {
		cfg.CertificateTimeout = 60 * time.Second
	}
	return &Client{cfg: cfg, keyType: kt, log: log}, nil
}

type user struct {
	email string
	key   crypto.Signer
	reg   *acme.ExtendedAccount
}

func (u *user) GetEmail() string                       { return u.email }
func (u *user) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer           { return u.key }

// client returns the registered lego client for HTTP-01, or for DNS-01 when dns is set,
// registering the account first if needed. Registration is idempotent: the CA answers an
// existing account for a known key, so every replica ends up on the one account of the
// shared key.
func (c *Client) client(ctx context.Context, dns bool) (*lego.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lego == nil {
		if err := c.register(ctx); err != nil {
			return nil, err
		}
	}
	if !dns {
		return c.lego, nil
	}
	if c.cfg.DNS01 == nil {
		return nil, ErrNoDNS01
	}
	return c.legoDNS, nil
}

// ErrNoDNS01: a wildcard order, and no DNS-01 writer is configured.
var ErrNoDNS01 = errors.New("wildcard certificates need DNS-01, and no delegation zone writer is configured")

func (c *Client) register(ctx context.Context) error {
	key, err := c.cfg.AccountKey.LoadOrCreate(ctx)
	if err != nil {
		return err
	}
	u := &user{email: c.cfg.Email, key: key}
	client, err := c.newLego(u)
	if err != nil {
		return err
	}
	if err := client.Challenge.SetHTTP01Provider(c.cfg.HTTP01); err != nil {
		return err
	}
	if c.cfg.EABKeyID != "" {
		u.reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: c.cfg.EABKeyID, HmacEncoded: c.cfg.EABHMAC,
		})
	} else {
		u.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return fmt.Errorf("register ACME account: %w", err)
	}
	// The registrar set the account URL (kid) on the client's core; keep this client.
	var dnsClient *lego.Client
	if c.cfg.DNS01 != nil {
		// A client made for a registered user signs with the account URL at once.
		if dnsClient, err = c.newLego(u); err != nil {
			return err
		}
		if err := dnsClient.Challenge.SetDNS01Provider(c.cfg.DNS01, c.cfg.DNS01Options...); err != nil {
			return err
		}
	}
	c.log.Info("ACME account ready", zap.String("account_url", u.reg.Location), zap.String("directory", c.cfg.DirectoryURL))
	c.lego, c.legoDNS = client, dnsClient
	return nil
}

func (c *Client) newLego(u *user) (*lego.Client, error) {
	cfg := lego.NewConfig(u)
	cfg.CADirURL = c.cfg.DirectoryURL
	httpClient := *c.cfg.HTTPClient // lego wraps the transport of the client it is given
	cfg.HTTPClient = &httpClient
	cfg.UserAgent = "portico-notary"
	cfg.Certificate.Timeout = c.cfg.CertificateTimeout
	client, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %w", c.cfg.DirectoryURL, err)
	}
	return client, nil
}

// Certificate is an issued certificate with its fresh key.
type Certificate struct {
	// Chain is DER, leaf first.
	Chain [][]byte
	// Key is the leaf's private key, PKCS#8 DER.
	Key  []byte
	Leaf *x509.Certificate
	// URL is the certificate's URL at the CA.
	URL string
}

// Obtain orders a certificate for names (the first is the certificate's main name) with
// a fresh key, by DNS-01 when one of them is a wildcard, by HTTP-01 otherwise. replaces,
// when not nil, is the certificate being renewed: the order names it (ARI `replaces`)
// where the CA supports it.
func (c *Client) Obtain(ctx context.Context, names []string, replaces *x509.Certificate) (Certificate, error) {
	if len(names) == 0 {
		return Certificate{}, errors.New("acmeclient: an order needs at least one name")
	}
	wildcard := slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "*.") })
	client, err := c.client(ctx, wildcard)
	if err != nil {
		return Certificate{}, err
	}
	var res *certificate.Resource
	if replaces != nil {
		old := certificate.Resource{
			Domains:     names,
			Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: replaces.Raw}),
		}
		res, err = client.Certificate.Renew(ctx, old, &certificate.RenewOptions{
			KeyType: c.keyType, Profile: c.cfg.Profile, UseARICertID: true,
		})
	} else {
		res, err = client.Certificate.Obtain(ctx, certificate.ObtainRequest{
			Domains: names, KeyType: c.keyType, Profile: c.cfg.Profile,
		})
	}
	if err != nil {
		return Certificate{}, err
	}
	return parseResource(res)
}

func parseResource(res *certificate.Resource) (Certificate, error) {
	var chain [][]byte
	for _, b := range [][]byte{res.Certificate, res.IssuerCertificate} {
		certs, err := certcrypto.ParsePEMBundle(b)
		if err != nil {
			return Certificate{}, fmt.Errorf("parse the issued chain: %w", err)
		}
		for _, c := range certs {
			chain = append(chain, c.Raw)
		}
	}
	if len(chain) == 0 {
		return Certificate{}, errors.New("the CA returned no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return Certificate{}, err
	}
	signer, err := certcrypto.ParsePEMPrivateKey(res.PrivateKey)
	if err != nil {
		return Certificate{}, fmt.Errorf("parse the certificate's key: %w", err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return Certificate{}, err
	}
	return Certificate{Chain: chain, Key: key, Leaf: leaf, URL: res.CertURL}, nil
}

// ErrNoRenewalInfo: the CA offers no ARI.
var ErrNoRenewalInfo = errors.New("the CA offers no renewal information")

// RenewalInfo fetches the CA's suggested renewal window for leaf and how long to wait
// before asking again (zero when the CA said nothing).
func (c *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (lifecycle.Window, time.Duration, error) {
	client, err := c.client(ctx, false)
	if err != nil {
		return lifecycle.Window{}, 0, err
	}
	info, err := client.Certificate.GetRenewalInfo(ctx, leaf)
	if errors.Is(err, api.ErrNoARI) {
		return lifecycle.Window{}, 0, ErrNoRenewalInfo
	}
	if err != nil {
		return lifecycle.Window{}, 0, err
	}
	return lifecycle.Window{Start: info.SuggestedWindow.Start, End: info.SuggestedWindow.End}, info.RetryAfter, nil
}

// UseDNSResolvers points lego's DNS look-ups (following `_acme-challenge` CNAMEs, and the
// DNS providers' propagation checks) at the notary's resolvers instead of the system's.
// lego keeps this setting process-wide.
func UseDNSResolvers(resolvers []string, timeout time.Duration) {
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: resolvers, Timeout: timeout}))
}
