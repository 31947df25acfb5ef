package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/gateway/internal/proxyprotocol"
)

// Config is the gateway's configuration.
type Config struct {
	HTTPListen   string
	HTTPSListen  string
	AdminListen  string
	HealthListen string
	Certstore    grpcclient.Target
	Log          logging.Options
	Hostnames    hostname.Policy

	// Where requests go.
	Upstream          string
	NotaryHTTP        string
	RedirectHTTPSPort int

	// Who is believed about client addresses.
	TrustedProxies     []netip.Prefix
	ProxyProtocolCIDRs []netip.Prefix

	// The certificate cache and lookups.
	CacheMaxEntries  int
	CacheMaxBytes    int64
	CacheMaxNegative int
	CacheTTL         time.Duration
	CacheNegativeTTL time.Duration
	LookupTimeout    time.Duration
	MaxLookups       int

	// Client side of the listeners.
	SessionTickets    bool
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int64
	FastPath          bool

	// Upstream side.
	UpstreamDialTimeout     time.Duration
	UpstreamResponseTimeout time.Duration
	UpstreamIdleTimeout     time.Duration
	UpstreamMaxIdleConns    int
}

func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8000", "plain HTTP listen address (port 80 in production)")
	fs.StringVar(&c.HTTPSListen, "https-listen", "127.0.0.1:8443", "HTTPS listen address (port 443 in production)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9100", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	fs.StringVar(&c.HealthListen, "health-listen", "127.0.0.1:9104", "plaintext gRPC health listen address, for kubelet probes")
	c.Certstore.RegisterFlags(fs, "certstore", "127.0.0.1:9091")
	c.Log.RegisterFlags(fs)
	c.Hostnames.RegisterFlags(fs)

	fs.StringVar(&c.Upstream, "upstream", "127.0.0.1:9000", "default upstream (host:port, plain HTTP) for routes without an upstream of their own")
	fs.StringVar(&c.NotaryHTTP, "notary-http-addr", "127.0.0.1:8081", "the notary's HTTP listener (host:port), which answers /.well-known/acme-challenge/ and /.well-known/pki-validation/ on port 80")
	fs.IntVar(&c.RedirectHTTPSPort, "redirect-https-port", 443, "port clients reach HTTPS on, used in redirects from HTTP (443 is left out of the URL)")
	prefixesFlag(fs, &c.TrustedProxies, "trusted-proxies", "comma-separated CIDRs whose X-Forwarded-For/-Proto/-Host/-Port values are kept (empty: replaced for every client)")
	prefixesFlag(fs, &c.ProxyProtocolCIDRs, "proxy-protocol-cidrs", "comma-separated CIDRs of load balancers that must send a PROXY protocol v1/v2 header on both listeners (empty: PROXY protocol off)")

	fs.IntVar(&c.CacheMaxEntries, "cache-max-entries", 100_000, "most certificates held in the cache")
	byteSizeFlag(fs, &c.CacheMaxBytes, "cache-max-bytes", 256<<20, "most memory the cached certificates may hold (estimated; suffixes KiB, MiB, GiB)")
	fs.IntVar(&c.CacheMaxNegative, "cache-max-negative", 10_000, "most names remembered as having no certificate (kept apart, so unknown names never evict certificates)")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", time.Hour, "how long a cached certificate is fresh; after that it is refreshed in the background and still served (until its notAfter) while certstore cannot be reached")
	fs.DurationVar(&c.CacheNegativeTTL, "cache-negative-ttl", time.Minute, "how long a name without a certificate is remembered as such")
	fs.DurationVar(&c.LookupTimeout, "lookup-timeout", 3*time.Second, "bound on one certstore Lookup made on a cache miss")
	fs.IntVar(&c.MaxLookups, "max-lookups", 256, "most certstore Lookups in flight (distinct names); a miss beyond it fails at once")

	fs.BoolVar(&c.SessionTickets, "session-tickets", true, "TLS session resumption by tickets (keys are per process; see docs/gateway.md for several replicas)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has for the TLS handshake, a PROXY header, and each request's headers")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 120*time.Second, "keep-alive connections idle this long are closed")
	byteSizeFlag(fs, &c.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block; larger gets 431 (suffixes KiB, MiB)")
	fs.BoolVar(&c.FastPath, "http1-fast-path", true, "serve HTTP/1.1 clients of the HTTPS listener with the gateway's own keep-alive proxy loop (docs/performance.md); false: net/http serves every request")

	fs.DurationVar(&c.UpstreamDialTimeout, "upstream-dial-timeout", 5*time.Second, "bound on connecting to an upstream (then 502)")
	fs.DurationVar(&c.UpstreamResponseTimeout, "upstream-response-timeout", 60*time.Second, "bound on waiting for an upstream's response headers (then 504)")
	fs.DurationVar(&c.UpstreamIdleTimeout, "upstream-idle-timeout", 90*time.Second, "pooled upstream connections idle this long are closed")
	fs.IntVar(&c.UpstreamMaxIdleConns, "upstream-max-idle-conns", 1024, "idle keep-alive connections kept per upstream")
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("http-listen", c.HTTPListen)
	p.CheckListen("https-listen", c.HTTPSListen)
	p.CheckListen("admin-listen", c.AdminListen)
	p.CheckListen("health-listen", c.HealthListen)
	c.Certstore.Validate(&p, "certstore")
	checkHostPort(&p, "upstream", c.Upstream)
	checkHostPort(&p, "notary-http-addr", c.NotaryHTTP)
	if c.RedirectHTTPSPort < 1 || c.RedirectHTTPSPort > 65535 {
		p.Addf("redirect-https-port", "%d is not a TCP port", c.RedirectHTTPSPort)
	}
	atLeast(&p, "cache-max-entries", c.CacheMaxEntries, 1)
	atLeast(&p, "cache-max-negative", c.CacheMaxNegative, 1)
	atLeast(&p, "max-lookups", c.MaxLookups, 1)
	atLeast(&p, "upstream-max-idle-conns", c.UpstreamMaxIdleConns, 1)
	if c.CacheMaxBytes < 64<<10 {
		p.Addf("cache-max-bytes", "%d bytes is too small to hold a certificate (at least 64KiB)", c.CacheMaxBytes)
	}
	if c.MaxHeaderBytes < 4<<10 || c.MaxHeaderBytes > 16<<20 {
		p.Addf("max-header-bytes", "%d is outside 4KiB..16MiB", c.MaxHeaderBytes)
	}
	for name, d := range map[string]time.Duration{
		"cache-ttl": c.CacheTTL, "cache-negative-ttl": c.CacheNegativeTTL, "lookup-timeout": c.LookupTimeout,
		"read-header-timeout": c.ReadHeaderTimeout, "idle-timeout": c.IdleTimeout,
		"upstream-dial-timeout": c.UpstreamDialTimeout, "upstream-response-timeout": c.UpstreamResponseTimeout,
		"upstream-idle-timeout": c.UpstreamIdleTimeout,
	} {
		if d <= 0 {
			p.Addf(name, "must be positive, got %v", d)
		}
	}
	return p.Err()
}

func parseConfig(args []string) (Config, error) {
	var c Config
	if err := config.Parse(c.flagSet(), args); err != nil {
		return c, err
	}
	return c, c.validate()
}

func checkHostPort(p *config.Problems, flagName, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		p.Addf(flagName, "%q is not host:port", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.Addf(flagName, "%q has no valid port", v)
	}
}

func atLeast(p *config.Problems, flagName string, v, least int) {
	if v < least {
		p.Addf(flagName, "must be at least %d, got %d", least, v)
	}
}

// prefixesFlag adds a flag holding a comma-separated list of CIDRs.
func prefixesFlag(fs *flag.FlagSet, dst *[]netip.Prefix, name, usage string) {
	fs.Func(name, usage, func(v string) error {
		ps, err := proxyprotocol.ParsePrefixes(v)
		if err != nil {
			return err
		}
		*dst = ps
		return nil
	})
}

// byteSizeFlag adds a flag holding a size in bytes, with an optional binary suffix.
func byteSizeFlag(fs *flag.FlagSet, dst *int64, name string, def int64, usage string) {
	*dst = def
	fs.Var((*byteSize)(dst), name, usage)
}

// byteSize is a number of bytes written as 1048576, 1024KiB, 1MiB or 1GiB. (Parsing
// three suffixes did not justify a dependency.)
type byteSize int64

var byteSuffixes = []struct {
	suffix string
	factor int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (b *byteSize) String() string {
	v := int64(*b)
	for _, s := range byteSuffixes {
		if v != 0 && v%s.factor == 0 {
			return strconv.FormatInt(v/s.factor, 10) + s.suffix
		}
	}
	return "0"
}

func (b *byteSize) Set(s string) error {
	num, factor := strings.TrimSpace(s), int64(1)
	for _, suf := range byteSuffixes {
		if n, ok := strings.CutSuffix(num, suf.suffix); ok {
			num, factor = strings.TrimSpace(n), suf.factor
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/factor {
		return fmt.Errorf("%q is not a size in bytes (e.g. 65536, 64KiB, 256MiB)", s)
	}
	*b = byteSize(v * factor)
	return nil
}
