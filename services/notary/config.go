package main

import (
	"flag"
	"net/url"
	"strings"
	"time"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/edge"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/redisconn"
	"github.com/portico-dev/portico/services/notary/internal/acmeclient"
	"github.com/portico-dev/portico/services/notary/internal/dnsproviders"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
	"github.com/portico-dev/portico/services/notary/internal/worker"
)

// Config is the notary's configuration.
type Config struct {
	Listen       string
	HealthListen string
	AdminListen  string
	HTTPListen   string
	TLS          mtls.Files
	Certstore    grpcclient.Target
	Redis        redisconn.Options
	Store        dynamo.StoreOptions
	Log          logging.Options
	Hostnames    hostname.Policy

	ACME struct {
		Directory      string
		CAFile         string
		Email          string
		EABKeyID       string
		EABHMAC        string
		Profile        string
		KeyType        string
		AccountKeyFile string
		OrderTimeout   time.Duration
	}
	DNS struct {
		Resolvers         string
		Timeout           time.Duration
		Edge              edge.Flags
		CAAIdentities     string
		ResolversOnly     bool
		AuthoritativePort int
	}
	Delegation struct {
		Zone        string
		Writer      string
		DNSListen   string
		Nameservers string
		TTL         time.Duration
	}
	Policy        lifecycle.Policy
	Worker        worker.Config
	VerifyTimeout time.Duration
	ChallengeTTL  time.Duration

	// Derived by validate.
	edge edge.Edge
}

// BuiltinWriter is the -delegation-writer value of the built-in DNS server.
const BuiltinWriter = "builtin"

func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("notary", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9092", "gRPC listen address (NotaryService, for controlapi)")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plaintext gRPC health-only listen address, for kubelet probes (empty: off)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9102", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8081", "HTTP listen address for /.well-known/acme-challenge/ and /.well-known/pki-validation/, reached through the gateway")
	c.TLS.RegisterFlags(fs, "tls", "this server's")
	c.Certstore.RegisterFlags(fs, "certstore", "127.0.0.1:9091")
	c.Redis.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	c.Hostnames.RegisterFlags(fs)

	fs.StringVar(&c.ACME.Directory, "acme-directory", "https://acme-v02.api.letsencrypt.org/directory", "ACME directory URL of the CA (Let's Encrypt staging: https://acme-staging-v02.api.letsencrypt.org/directory)")
	fs.StringVar(&c.ACME.CAFile, "acme-ca-file", "", "PEM bundle trusted for the CA's API, instead of the system roots (a private or test CA such as Pebble)")
	fs.StringVar(&c.ACME.Email, "acme-email", "", "contact address of the ACME account (optional)")
	fs.StringVar(&c.ACME.EABKeyID, "acme-eab-kid", "", "external account binding key ID, for CAs that require one")
	fs.StringVar(&c.ACME.EABHMAC, "acme-eab-hmac", "", "external account binding HMAC key, base64url (prefer the environment variable)")
	fs.StringVar(&c.ACME.Profile, "acme-profile", "", "ACME certificate profile to order (empty: the CA's default)")
	fs.StringVar(&c.ACME.KeyType, "acme-key-type", "ec256", "key of each certificate, fresh per certificate: ec256 (ECDSA P-256) or rsa2048")
	fs.StringVar(&c.ACME.AccountKeyFile, "acme-account-key-file", "acme-account-key.pem", "the deployment's ACME account key (PEM), shared by every replica; created 0600 when absent")
	fs.DurationVar(&c.ACME.OrderTimeout, "acme-order-timeout", 5*time.Minute, "how long one ACME order may take")

	fs.StringVar(&c.DNS.Resolvers, "dns-resolvers", "1.1.1.1:53,8.8.8.8:53", "recursive DNS resolvers (host:port, comma-separated), asked in order")
	fs.DurationVar(&c.DNS.Timeout, "dns-timeout", 2*time.Second, "timeout of one DNS query to one resolver")
	c.DNS.Edge.RegisterFlags(fs)
	fs.StringVar(&c.DNS.CAAIdentities, "caa-identities", "letsencrypt.org", "the CA's identities as CAA records name them (comma-separated); empty skips the CAA check")
	fs.BoolVar(&c.DNS.ResolversOnly, "dns-resolvers-only", false, "read the _acme-challenge CNAME from the resolvers instead of the domain's authoritative nameservers (where only the resolvers are reachable)")
	fs.IntVar(&c.DNS.AuthoritativePort, "dns-authoritative-port", 53, "port the domains' authoritative nameservers are asked on (tests run theirs elsewhere)")

	fs.StringVar(&c.Delegation.Zone, "delegation-zone", "", "zone that wildcard domains delegate _acme-challenge into (DNS-01), as controlapi's flag of the same name; empty: wildcard domains are verified but not ordered")
	fs.StringVar(&c.Delegation.Writer, "delegation-writer", BuiltinWriter, "who writes DNS-01 answers into the delegation zone: builtin (this notary's authoritative DNS server; the zone is delegated to it) or a lego DNS provider name ("+strings.Join(dnsproviders.Names(), ", ")+"), configured by lego's environment variables")
	fs.StringVar(&c.Delegation.DNSListen, "delegation-dns-listen", "127.0.0.1:8054", "UDP and TCP listen address of the built-in DNS server (production: :53 behind a Service)")
	fs.StringVar(&c.Delegation.Nameservers, "delegation-nameservers", "", "the delegation zone's NS names, as its parent zone delegates to them (comma-separated, outside the zone); required with the built-in writer")
	fs.DurationVar(&c.Delegation.TTL, "delegation-ttl", 10*time.Second, "TTL of the built-in server's TXT answers and of its negative answers")

	d := lifecycle.DefaultPolicy()
	fs.DurationVar(&c.Policy.VerifyInterval, "verify-interval", d.VerifyInterval, "first spacing of ownership checks; it doubles every 5 failed checks")
	fs.DurationVar(&c.Policy.VerifyMaxInterval, "verify-max-interval", d.VerifyMaxInterval, "longest spacing of ownership checks")
	fs.DurationVar(&c.Policy.VerifyDeadline, "verify-deadline", d.VerifyDeadline, "how long after creation ownership is checked before the domain is FAILED")
	fs.DurationVar(&c.Policy.ReverifyInterval, "reverify-interval", d.ReverifyInterval, "how often an active domain is checked to still point at the edge")
	fs.IntVar(&c.Policy.ReverifyThreshold, "reverify-failures", d.ReverifyThreshold, "consecutive definite re-verification failures that make a domain MOVED")
	fs.DurationVar(&c.Policy.MovedGrace, "moved-grace", d.MovedGrace, "how long a MOVED domain is kept before it is removed")
	fs.DurationVar(&c.Policy.RenewalInfoInterval, "renewal-info-interval", d.RenewalInfoInterval, "longest wait between two fetches of the CA's renewal window (ARI); the CA's Retry-After may shorten it")
	fs.DurationVar(&c.Policy.TransientRetry, "transient-retry", d.TransientRetry, "first wait after an indeterminate DNS answer or a transient error (doubles, up to 30 min)")
	fs.DurationVar(&c.Policy.InFlight, "in-flight-timeout", d.InFlight, "how long an order in flight is left to its holder before another replica may take it over (the lease decides whether the holder lives)")

	fs.DurationVar(&c.Worker.LeaseTTL, "lease-ttl", 30*time.Second, "per-domain lease duration (renewed every third of it while working)")
	fs.DurationVar(&c.Worker.PollInterval, "poll-interval", 5*time.Second, "how often the due index is read")
	fs.DurationVar(&c.Worker.RenewalScanInterval, "renewal-scan-interval", time.Minute, "how often certstore's renewal index is read")
	fs.IntVar(&c.Worker.Concurrency, "concurrency", 8, "domains this replica works on at once")
	fs.IntVar(&c.Worker.Limits.OrdersPer3h, "limit-orders-per-3h", 300, "new orders per 3 hours the deployment stays under (the CA's limit; 0: unchecked)")
	fs.IntVar(&c.Worker.Limits.CertsPerDomainPer7d, "limit-certificates-per-domain-per-week", 50, "certificates per registered domain per 7 days the deployment stays under (0: unchecked)")
	fs.DurationVar(&c.VerifyTimeout, "verify-timeout", 15*time.Second, "how long VerifyDomain waits for its synchronous check")
	fs.DurationVar(&c.ChallengeTTL, "challenge-ttl", time.Hour, "how long an HTTP-01 answer is kept when its order never cleans it up")
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("listen", c.Listen)
	p.CheckOptionalListen("health-listen", c.HealthListen)
	p.CheckListen("admin-listen", c.AdminListen)
	p.CheckListen("http-listen", c.HTTPListen)
	if err := c.TLS.Check(); err != nil {
		p.Addf("tls-cert", "%v", err)
	}
	if !c.TLS.Enabled() && !config.IsLoopback(c.Listen) {
		p.Addf("listen", "%q is not loopback; plaintext mode binds to loopback only (set -tls-cert, -tls-key, -tls-ca)", c.Listen)
	}
	c.Certstore.Validate(&p, "certstore")
	c.Redis.Validate(&p)
	c.Store.Validate(&p)

	if u, err := url.Parse(c.ACME.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		p.Addf("acme-directory", "%q is not an https URL (ACME requires HTTPS)", c.ACME.Directory)
	}
	if _, ok := acmeclient.KeyTypes[c.ACME.KeyType]; !ok {
		p.CheckOneOf("acme-key-type", c.ACME.KeyType, "ec256", "rsa2048")
	}
	p.CheckRequired("acme-account-key-file", c.ACME.AccountKeyFile)
	if (c.ACME.EABKeyID == "") != (c.ACME.EABHMAC == "") {
		p.Addf("acme-eab-kid", "external account binding needs both -acme-eab-kid and -acme-eab-hmac")
	}
	resolvers := config.List(c.DNS.Resolvers)
	if len(resolvers) == 0 {
		p.Addf("dns-resolvers", "at least one resolver is needed")
	}
	for _, r := range resolvers {
		p.CheckListen("dns-resolvers", r)
	}
	c.edge = c.DNS.Edge.Validate(&p, c.Hostnames)
	if c.DNS.AuthoritativePort < 1 || c.DNS.AuthoritativePort > 65535 {
		p.Addf("dns-authoritative-port", "%d is not a port", c.DNS.AuthoritativePort)
	}
	c.validateDelegation(&p)
	if c.Policy.ReverifyThreshold < 1 {
		p.Addf("reverify-failures", "must be at least 1")
	}
	if c.Worker.Concurrency < 1 {
		p.Addf("concurrency", "must be at least 1")
	}
	if c.Worker.LeaseTTL < time.Second {
		p.Addf("lease-ttl", "%v is shorter than a second", c.Worker.LeaseTTL)
	}
	return p.Err()
}

// validateDelegation checks the delegation settings; they matter only with a zone.
func (c *Config) validateDelegation(p *config.Problems) {
	dz := &c.Delegation
	if dz.Zone == "" {
		return
	}
	if _, err := c.Hostnames.Parse(dz.Zone); err != nil {
		p.Addf("delegation-zone", "%v", err)
		return
	}
	dz.Zone = strings.TrimSuffix(strings.ToLower(dz.Zone), ".")
	if dz.Writer != BuiltinWriter {
		if _, ok := dnsproviders.Supported[dz.Writer]; !ok {
			p.Addf("delegation-writer", "%q is neither builtin nor a lego DNS provider built into the notary (%s)", dz.Writer, strings.Join(dnsproviders.Names(), ", "))
		}
		return
	}
	p.CheckListen("delegation-dns-listen", dz.DNSListen)
	ns := config.List(dz.Nameservers)
	if len(ns) == 0 {
		p.Addf("delegation-nameservers", "the built-in DNS server needs the zone's NS names (as the parent zone delegates to them)")
	}
	for _, n := range ns {
		name := strings.TrimSuffix(strings.ToLower(n), ".")
		if _, err := c.Hostnames.Parse(name); err != nil {
			p.Addf("delegation-nameservers", "%q: %v", n, err)
		} else if name == dz.Zone || strings.HasSuffix(name, "."+dz.Zone) {
			p.Addf("delegation-nameservers", "%q is inside the zone, which answers only TXT challenges; name nameservers outside it", n)
		}
	}
	if dz.TTL < time.Second || dz.TTL > time.Hour {
		p.Addf("delegation-ttl", "%v is not between 1s and 1h", dz.TTL)
	}
}

func parseConfig(args []string) (Config, error) {
	var c Config
	if err := config.Parse(c.flagSet(), args); err != nil {
		return c, err
	}
	c.Worker.Policy = c.Policy
	c.Worker.OrderTimeout = c.ACME.OrderTimeout
	c.Worker.DelegationZone = strings.TrimSuffix(strings.ToLower(c.Delegation.Zone), ".")
	return c, c.validate()
}
