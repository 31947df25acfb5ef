// Package proxy is the gateway's HTTP side: the HTTPS server, the handlers of the HTTPS
// and plain-HTTP listeners, and the reverse proxy to upstreams. HTTP/1.1 clients of the
// HTTPS listener are served by the fast path (fast.go: one goroutine per connection,
// heads parsed in place by internal/httpwire, its own pool of upstream connections);
// HTTP/2 clients, plain HTTP and every request the fast path hands over (upgrades,
// Expect, chunked or large bodies, HTTP/1.0) go through net/http and
// net/http/httputil.ReverseProxy in Rewrite mode over one pooled keep-alive transport.
// Both paths apply the rules below.
//
// HTTPS: the Host must name the connection's SNI name (port ignored, compared after
// normalization), otherwise 421 Misdirected Request without reaching any upstream; then
// the route of that name (its upstream, or the default one) gets the request.
//
// Plain HTTP: /.well-known/acme-challenge/ and /.well-known/pki-validation/ always go to
// the notary's HTTP listener, whatever the Host and its route say (never to an upstream,
// never redirected). Everything else follows the Host's route: a 308 to https:// when
// the route asks for it, the upstream otherwise, and 404 for a host Portico does not serve.
//
// Upstream requests keep the client's Host and carry X-Forwarded-For, X-Real-IP,
// X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Port. Values a client sent in those
// headers are kept only when the connection comes from a trusted proxy (-trusted-proxies);
// otherwise they are replaced. X-Real-IP is then the rightmost address in the
// X-Forwarded-For chain that is not a trusted proxy. Hop-by-hop headers are removed and
// WebSocket upgrades pass through (ReverseProxy does both). An unreachable upstream gets
// 502, one that does not answer within the response timeout 504, each with a short plain
// body.
package proxy

import (
	"context"
	"errors"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/handshake"
	"github.com/portico-dev/portico/services/gateway/internal/proxyprotocol"
)

// Resolver finds the entry (certificate and route) serving a raw hostname: the
// handshake pipeline (handshake.Selector).
type Resolver interface {
	Resolve(ctx context.Context, raw string) (*certcache.Entry, handshake.Result, error)
}

// Config shapes the proxy; zero durations and sizes take the defaults.
type Config struct {
	// DefaultUpstream (host:port) serves routes without an upstream of their own.
	DefaultUpstream string
	// NotaryHTTP (host:port) answers the validation paths of plain HTTP.
	NotaryHTTP string
	// TrustedProxies may send X-Forwarded-* and X-Real-IP values that are kept.
	TrustedProxies []netip.Prefix
	// RedirectHTTPSPort is the port in redirects to HTTPS (443, the default, is omitted).
	RedirectHTTPSPort int
	// Policy normalizes Host headers (its ExtraTLDs must match the handshake's).
	Policy hostname.Policy
	// DialTimeout bounds connecting to an upstream (default 5 s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds waiting for an upstream's response headers (default 60 s).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled upstream connections idle this long (default 90 s).
	IdleConnTimeout time.Duration
	// MaxIdleConns is the idle pool per upstream (default 1024).
	MaxIdleConns int
}

// Proxy serves both listeners. Build it with New.
type Proxy struct {
	cfg       Config
	resolver  Resolver
	log       *zap.Logger
	transport *http.Transport
	fast      *upstreamPool // the fast path's upstream connections
	buffers   *bufferPool
	upstream  *httputil.ReverseProxy // to DefaultUpstream
	notary    *httputil.ReverseProxy
	overrides *lru.Cache[string, *httputil.ReverseProxy] // routes' own upstreams
	errorLog  *stdlog.Logger
	m         *metrics
}

// The paths of plain HTTP that belong to the notary.
const (
	acmeChallengePath = "/.well-known/acme-challenge/"
	pkiValidationPath = "/.well-known/pki-validation/"
)

// New builds the proxy. reg receives its metrics (nil: not registered).
func New(cfg Config, resolver Resolver, log *zap.Logger, reg prometheus.Registerer) *Proxy {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = 60 * time.Second
	}
	if cfg.IdleConnTimeout <= 0 {
		cfg.IdleConnTimeout = 90 * time.Second
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = 1024
	}
	if cfg.RedirectHTTPSPort <= 0 {
		cfg.RedirectHTTPSPort = 443
	}
	p := &Proxy{
		cfg:      cfg,
		resolver: resolver,
		log:      log,
		buffers:  &bufferPool{},
		m:        newMetrics(reg),
		transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          0, // no global bound: MaxIdleConnsPerHost bounds each upstream
			MaxIdleConnsPerHost:   cfg.MaxIdleConns,
			IdleConnTimeout:       cfg.IdleConnTimeout,
			ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
			ExpectContinueTimeout: time.Second,
			// Pass the client's Accept-Encoding and the upstream's encoding through untouched.
			DisableCompression: true,
		},
	}
	p.fast = newUpstreamPool(cfg.DialTimeout, cfg.IdleConnTimeout, cfg.MaxIdleConns)
	p.overrides, _ = lru.New[string, *httputil.ReverseProxy](1024)
	// ReverseProxy's own messages (copy errors after the response started) are noise
	// for an edge: debug level. Failures it hands to ErrorHandler are counted in metrics.
	p.errorLog, _ = zap.NewStdLogAt(log.Named("reverseproxy"), zap.DebugLevel)
	p.upstream = p.reverseProxy(cfg.DefaultUpstream, targetUpstream)
	p.notary = p.reverseProxy(cfg.NotaryHTTP, targetNotary)
	return p
}

// Close drops the idle upstream connections.
func (p *Proxy) Close() {
	p.transport.CloseIdleConnections()
	p.fast.closeAll()
}

// HTTPS is the handler of the TLS listener.
func (p *Proxy) HTTPS() http.Handler { return http.HandlerFunc(p.serveHTTPS) }

// HTTP is the handler of the plain-HTTP listener.
func (p *Proxy) HTTP() http.Handler { return http.HandlerFunc(p.servePlain) }

func (p *Proxy) serveHTTPS(w http.ResponseWriter, r *http.Request) {
	sni := r.TLS.ServerName
	if !p.sameName(hostWithoutPort(r.Host), sni) {
		p.m.requests[listenerHTTPS][outcomeMisdirected].Inc()
		http.Error(w, "misdirected request: the Host does not match the TLS server name", http.StatusMisdirectedRequest)
		return
	}
	e, _, err := p.resolver.Resolve(r.Context(), sni)
	if err != nil {
		if errkind.Is(err, errkind.NotFound) || errkind.Is(err, errkind.InvalidArgument) {
			// Removed since this connection's handshake: a new connection will be refused.
			p.m.requests[listenerHTTPS][outcomeMisdirected].Inc()
			http.Error(w, "misdirected request: this host is no longer served here", http.StatusMisdirectedRequest)
			return
		}
		p.unavailable(w, listenerHTTPS, err)
		return
	}
	p.m.requests[listenerHTTPS][outcomeProxied].Inc()
	p.upstreamFor(e.Route).ServeHTTP(w, r)
}

func (p *Proxy) servePlain(w http.ResponseWriter, r *http.Request) {
	if isValidationPath(r.URL.Path) {
		p.m.requests[listenerHTTP][outcomeChallenge].Inc()
		p.notary.ServeHTTP(w, r)
		return
	}
	e, _, err := p.resolver.Resolve(r.Context(), hostWithoutPort(r.Host))
	if err != nil {
		if errkind.Is(err, errkind.NotFound) || errkind.Is(err, errkind.InvalidArgument) {
			p.m.requests[listenerHTTP][outcomeUnknownHost].Inc()
			http.Error(w, "unknown host", http.StatusNotFound)
			return
		}
		p.unavailable(w, listenerHTTP, err)
		return
	}
	if e.Route.RedirectHTTPS {
		p.m.requests[listenerHTTP][outcomeRedirected].Inc()
		target := "https://" + e.Name
		if p.cfg.RedirectHTTPSPort != 443 {
			target += ":" + strconv.Itoa(p.cfg.RedirectHTTPSPort)
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	p.m.requests[listenerHTTP][outcomeProxied].Inc()
	p.upstreamFor(e.Route).ServeHTTP(w, r)
}

func (p *Proxy) unavailable(w http.ResponseWriter, listener int, err error) {
	p.m.requests[listener][outcomeUnavailable].Inc()
	p.log.Debug("cannot resolve a host's route", zap.Error(err))
	w.Header().Set("Retry-After", "5")
	http.Error(w, "certificate service unavailable", http.StatusServiceUnavailable)
}

// isValidationPath reports whether a request path belongs to the notary. The path is
// compared after cleaning, so `/x/../.well-known/acme-challenge/t` counts and
// `/.well-known/acme-challenge/../../admin` does not.
func isValidationPath(p string) bool {
	if !strings.HasPrefix(p, "/.well-known/") {
		if !strings.Contains(p, "..") && !strings.Contains(p, "//") {
			return false
		}
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return strings.HasPrefix(clean, acmeChallengePath) || strings.HasPrefix(clean, pkiValidationPath)
}

// sameName reports whether a Host (without port) names the connection's SNI name.
func (p *Proxy) sameName(host, sni string) bool {
	if host == sni {
		return true // the handshake accepted sni, so it is a valid name
	}
	h, err := p.cfg.Policy.Normalize(host)
	if err != nil {
		return false
	}
	s, err := p.cfg.Policy.Normalize(sni)
	return err == nil && h == s
}

// hostWithoutPort strips a port from a Host header value. An IPv6 literal keeps its
// brackets, which hostname refuses.
func hostWithoutPort(host string) string {
	if strings.HasPrefix(host, "[") {
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// upstreamFor is the reverse proxy of a route's upstream.
func (p *Proxy) upstreamFor(r certcache.Route) *httputil.ReverseProxy {
	if r.Upstream == "" || r.Upstream == p.cfg.DefaultUpstream {
		return p.upstream
	}
	if rp, ok := p.overrides.Get(r.Upstream); ok {
		return rp
	}
	rp := p.reverseProxy(r.Upstream, targetUpstream)
	p.overrides.Add(r.Upstream, rp)
	return rp
}

func (p *Proxy) reverseProxy(addr string, target int) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.Out.Host = pr.In.Host
			p.setForwarded(pr)
		},
		Transport:  &instrumentedTransport{base: p.transport, m: p.m, target: target},
		BufferPool: p.buffers,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.upstreamError(w, r, err, target)
		},
		ErrorLog: p.errorLog,
	}
}

// setForwarded writes X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host
// and X-Forwarded-Port. ReverseProxy (Rewrite mode) has already removed the client's
// X-Forwarded-For/-Host/-Proto from the outbound request; X-Real-IP and X-Forwarded-Port
// are overwritten here.
func (p *Proxy) setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	peerHost, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		peerHost = in.RemoteAddr
	}
	peer, err := netip.ParseAddr(peerHost)
	trusted := err == nil && proxyprotocol.Contains(p.cfg.TrustedProxies, peer.Unmap())

	xff, realIP := peerHost, peerHost
	if trusted {
		if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			chain := strings.Join(prior, ", ")
			xff = chain + ", " + peerHost
			realIP = p.clientIn(chain, peerHost)
		}
	}
	proto, port := "http", "80"
	if in.TLS != nil {
		proto, port = "https", "443"
	}
	if i := strings.LastIndexByte(in.Host, ':'); i >= 0 && !strings.HasSuffix(in.Host, "]") {
		port = in.Host[i+1:]
	}
	host := in.Host
	if trusted {
		proto = firstOr(in.Header, "X-Forwarded-Proto", proto)
		host = firstOr(in.Header, "X-Forwarded-Host", host)
		port = firstOr(in.Header, "X-Forwarded-Port", port)
	}
	h := out.Header
	h["X-Forwarded-For"] = []string{xff}
	h["X-Real-Ip"] = []string{realIP}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{host}
	h["X-Forwarded-Port"] = []string{port}
}

// clientIn is the rightmost address of an X-Forwarded-For chain (sent by a trusted
// proxy) that is not itself a trusted proxy. An entry that is not an IP address ends the
// walk: the last valid address seen is the best answer.
func (p *Proxy) clientIn(chain, peer string) string {
	client := peer
	for chain != "" {
		var entry string
		if i := strings.LastIndexByte(chain, ','); i >= 0 {
			chain, entry = chain[:i], chain[i+1:]
		} else {
			chain, entry = "", chain
		}
		a, err := netip.ParseAddr(strings.TrimSpace(entry))
		if err != nil {
			break
		}
		client = a.Unmap().String()
		if !proxyprotocol.Contains(p.cfg.TrustedProxies, a.Unmap()) {
			break
		}
	}
	return client
}

func firstOr(h http.Header, key, def string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	return def
}

// upstreamError answers a failed upstream round trip: 502 when the upstream could not be
// reached, 504 when it did not answer in time, nothing when the client went away.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error, target int) {
	var op *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case r.Context().Err() != nil:
		p.m.failures[target][failureClientGone].Inc()
		w.WriteHeader(499) // not sent: the client is gone; keeps access logs honest
	case errors.As(err, &op) && op.Op == "dial", errors.As(err, &dnsErr):
		p.m.failures[target][failureUnreachable].Inc()
		http.Error(w, "upstream unreachable", http.StatusBadGateway)
	case errors.As(err, &netErr) && netErr.Timeout():
		p.m.failures[target][failureTimeout].Inc()
		http.Error(w, "upstream timed out", http.StatusGatewayTimeout)
	default:
		p.m.failures[target][failureOther].Inc()
		p.log.Debug("upstream request failed", zap.String("host", r.Host), zap.Error(err))
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers instead of allocating one per
// response.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

// instrumentedTransport times each upstream round trip to its response headers and
// counts responses by status code.
type instrumentedTransport struct {
	base   http.RoundTripper
	m      *metrics
	target int
}

func (t *instrumentedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.m.latency[t.target].Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.response(t.target, 0)
		return nil, err
	}
	t.m.response(t.target, resp.StatusCode)
	return resp, nil
}
