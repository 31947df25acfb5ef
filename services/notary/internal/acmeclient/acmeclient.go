// Package acmeclient obtains and renews certificates with go-acme/lego v5 for the
// notary: one ACME account per deployment (its key shared by every replica through an
// AccountKeyStore), HTTP-01 answered from the shared challenge store, a fresh private
// key per certificate, a named profile, ARI renewal information, and every failure
// classified for the lifecycle (Classify).
package acmeclient

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
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

	mu   sync.Mutex
	lego *lego.Client
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

// client returns the registered lego client, registering the account first if needed.
// Registration is idempotent: the CA answers an existing account for a known key, so
// every replica ends up on the one account of the shared key.
func (c *Client) client(ctx context.Context) (*lego.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lego != nil {
		return c.lego, nil
	}
	key, err := c.cfg.AccountKey.LoadOrCreate(ctx)
	if err != nil {
		return nil, err
	}
	u := &user{email: c.cfg.Email, key: key}
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
	if err := client.Challenge.SetHTTP01Provider(c.cfg.HTTP01); err != nil {
		return nil, err
	}
	if c.cfg.EABKeyID != "" {
		u.reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: c.cfg.EABKeyID, HmacEncoded: c.cfg.EABHMAC,
		})
	} else {
		u.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return nil, fmt.Errorf("register ACME account: %w", err)
	}
	// The registrar set the account URL (kid) on the client's core; keep this client.
	c.log.Info("ACME account ready", zap.String("account_url", u.reg.Location), zap.String("directory", c.cfg.DirectoryURL))
	c.lego = client
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

// Obtain orders a certificate for host with a fresh key. replaces, when not nil, is the
// certificate being renewed: the order names it (ARI `replaces`) where the CA supports
// it.
func (c *Client) Obtain(ctx context.Context, host string, replaces *x509.Certificate) (Certificate, error) {
	client, err := c.client(ctx)
	if err != nil {
		return Certificate{}, err
	}
	var res *certificate.Resource
	if replaces != nil {
		old := certificate.Resource{
			Domains:     []string{host},
			Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: replaces.Raw}),
		}
		res, err = client.Certificate.Renew(ctx, old, &certificate.RenewOptions{
			KeyType: c.keyType, Profile: c.cfg.Profile, UseARICertID: true,
		})
	} else {
		res, err = client.Certificate.Obtain(ctx, certificate.ObtainRequest{
			Domains: []string{host}, KeyType: c.keyType, Profile: c.cfg.Profile,
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
	client, err := c.client(ctx)
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
