package main

import (
	"flag"
	"os"
	"strings"
	"time"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/edge"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/redisconn"
	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
	"github.com/portico-dev/portico/services/controlapi/internal/upstream"
)

// minAdminKeyLength refuses guessable admin keys (32 characters of a random string are
// well over 128 bits).
const minAdminKeyLength = 32

// Config is controlapi's configuration.
type Config struct {
	Listen       string
	HTTPListen   string
	HealthListen string
	AdminListen  string
	Notary       grpcclient.Target
	Certstore    grpcclient.Target
	Redis        redisconn.Options
	Store        dynamo.StoreOptions
	Log          logging.Options
	Hostnames    hostname.Policy

	// AdminKey is the operator's key; AdminKeyFile names a file holding it.
	AdminKey     string
	AdminKeyFile string
	// TLSCert and TLSKey serve the public API (gRPC and JSON) over TLS.
	TLSCert string
	TLSKey  string
	// BehindTLSProxy allows plaintext on non-loopback addresses.
	BehindTLSProxy bool

	Edge           edge.Flags
	DelegationZone string
	UpstreamAllow  string
	CORSOrigins    string

	CreateRate       string
	VerifyRate       string
	VerifyDeadline   time.Duration
	NotaryTimeout    time.Duration
	CertstoreTimeout time.Duration
	MaxRequestBytes  int

	// Derived by validate.
	adminKey    string
	edge        edge.Edge
	upstreams   upstream.Policy
	createLimit ratelimit.Limit
	verifyLimit ratelimit.Limit
	corsOrigins []string
}

func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("controlapi", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9090", "gRPC listen address of the control API")
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8080", "JSON (grpc-gateway) listen address of the control API, with /openapi.json")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plaintext gRPC health-only listen address, for kubelet probes (empty: off)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9103", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	c.Notary.RegisterFlags(fs, "notary", "127.0.0.1:9092")
	c.Certstore.RegisterFlags(fs, "certstore", "127.0.0.1:9091")
	c.Redis.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	c.Hostnames.RegisterFlags(fs)

	fs.StringVar(&c.AdminKey, "admin-key", "", "the operator's admin key for /v1/tenants and any tenant's domains (prefer the environment variable or -admin-key-file; none: the tenant API refuses everything)")
	fs.StringVar(&c.AdminKeyFile, "admin-key-file", "", "file holding the admin key (surrounding whitespace ignored)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate chain (PEM) of the public API, gRPC and JSON; re-read when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "private key (PEM) of the public API")
	fs.BoolVar(&c.BehindTLSProxy, "behind-tls-proxy", false, "TLS is terminated in front of controlapi (load balancer, mesh sidecar): serve plaintext on non-loopback addresses")

	c.Edge.RegisterFlags(fs)
	fs.StringVar(&c.DelegationZone, "delegation-zone", "", "zone that wildcard domains delegate _acme-challenge into (DNS-01); empty refuses wildcard domains")
	fs.StringVar(&c.UpstreamAllow, "upstream-allow", "", "comma-separated upstream overrides tenants may set: CIDR prefixes and host:port patterns (*.example.com:443, host:*); loopback, link-local and metadata addresses only when named explicitly; empty: no overrides")
	fs.StringVar(&c.CORSOrigins, "cors-allowed-origins", "", "comma-separated browser origins allowed to call the JSON API (https://dash.example.com, https://*.example.com, *); empty: CORS off")

	fs.StringVar(&c.CreateRate, "create-rate", "100/1h", "per-tenant limit of domain creations, <count>/<duration> with a burst of count, or off")
	fs.StringVar(&c.VerifyRate, "verify-rate", "60/1h", "per-tenant limit of verify-now calls, <count>/<duration>, or off")
	fs.DurationVar(&c.VerifyDeadline, "verify-deadline", 7*24*time.Hour, "how long after creation ownership verification keeps being retried")
	fs.DurationVar(&c.NotaryTimeout, "notary-timeout", 2*time.Second, "timeout of each call to the notary (enqueue, verify-now); on expiry the work is left due in the store")
	fs.DurationVar(&c.CertstoreTimeout, "certstore-timeout", 2*time.Second, "timeout of each call to certstore (routes, deletions); on expiry the notary finishes the work")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", 64<<10, "largest request accepted, JSON body or gRPC message")
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("listen", c.Listen)
	p.CheckListen("http-listen", c.HTTPListen)
	p.CheckOptionalListen("health-listen", c.HealthListen)
	p.CheckListen("admin-listen", c.AdminListen)
	c.Notary.Validate(&p, "notary")
	c.Certstore.Validate(&p, "certstore")
	c.Redis.Validate(&p)
	c.Store.Validate(&p)

	c.validateAdminKey(&p)
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		p.Addf("tls-cert", "-tls-cert and -tls-key go together")
	case c.TLSCert == "" && !c.BehindTLSProxy:
		for _, l := range []struct{ flag, addr string }{{"listen", c.Listen}, {"http-listen", c.HTTPListen}} {
			if !config.IsLoopback(l.addr) {
				p.Addf(l.flag, "%q is not a loopback address: serve TLS (-tls-cert, -tls-key) or say that TLS is terminated in front (-behind-tls-proxy)", l.addr)
			}
		}
	}
	c.edge = c.Edge.Validate(&p, c.Hostnames)
	if c.DelegationZone != "" {
		if _, err := c.Hostnames.Parse(c.DelegationZone); err != nil {
			p.Addf("delegation-zone", "%v", err)
		}
	}
	var err error
	if c.upstreams, err = upstream.Parse(c.UpstreamAllow); err != nil {
		p.Addf("upstream-allow", "%v", err)
	}
	c.corsOrigins = config.List(c.CORSOrigins)
	if c.createLimit, err = ratelimit.Parse(c.CreateRate); err != nil {
		p.Addf("create-rate", "%v", err)
	}
	if c.verifyLimit, err = ratelimit.Parse(c.VerifyRate); err != nil {
		p.Addf("verify-rate", "%v", err)
	}
	if c.VerifyDeadline < time.Hour {
		p.Addf("verify-deadline", "%v is too short for DNS changes to propagate (at least 1h)", c.VerifyDeadline)
	}
	if c.NotaryTimeout <= 0 || c.CertstoreTimeout <= 0 {
		p.Addf("notary-timeout", "timeouts must be positive")
	}
	if c.MaxRequestBytes < 1<<10 || c.MaxRequestBytes > 4<<20 {
		p.Addf("max-request-bytes", "%d is not between 1 KiB and 4 MiB", c.MaxRequestBytes)
	}
	return p.Err()
}

func (c *Config) validateAdminKey(p *config.Problems) {
	switch {
	case c.AdminKey != "" && c.AdminKeyFile != "":
		p.Addf("admin-key-file", "give the admin key once: -admin-key or -admin-key-file")
		return
	case c.AdminKeyFile != "":
		b, err := os.ReadFile(c.AdminKeyFile)
		if err != nil {
			p.Addf("admin-key-file", "%v", err)
			return
		}
		c.adminKey = strings.TrimSpace(string(b))
		if c.adminKey == "" {
			p.Addf("admin-key-file", "%s is empty", c.AdminKeyFile)
			return
		}
	default:
		c.adminKey = strings.TrimSpace(c.AdminKey)
	}
	if c.adminKey != "" && len(c.adminKey) < minAdminKeyLength {
		p.Addf("admin-key", "is %d characters; use a random key of at least %d (openssl rand -hex 32)", len(c.adminKey), minAdminKeyLength)
	}
}

func parseConfig(args []string) (Config, error) {
	var c Config
	if err := config.Parse(c.flagSet(), args); err != nil {
		return c, err
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}
