package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// proxyStack is certstore with a few routes, a recording upstream and notary, and a
// gateway in front of them.
type proxyStack struct {
	cs     *certstoreProc
	ca     *testpki.CA
	up     *recorder
	notary *recorder
	gw     *gateway
}

func newProxyStack(t *testing.T, upstream http.HandlerFunc, gatewayFlags ...string) *proxyStack {
	t.Helper()
	s := &proxyStack{cs: startCertstore(t, certstoreOptions{}), ca: testpki.NewCA(t)}
	s.up = startRecorder(t, "upstream", upstream)
	s.notary = startRecorder(t, "notary", nil)
	s.cs.put(s.ca, "shop.example.com", nil)
	s.cs.put(s.ca, "other.example.com", nil)
	s.cs.put(s.ca, "secure.example.com", &certstorev1.Route{RedirectHttps: true})
	s.gw = startGateway(t, s.ca, s.cs.addr, s.up.addr, s.notary.addr, true, gatewayFlags...)
	return s
}

// dialFrom returns a dialer to the gateway from a chosen loopback address, optionally
// sending a PROXY v2 header first.
func dialFrom(local string, proxyHeader *proxyproto.Header) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || proxyHeader == nil {
			return c, err
		}
		if _, err := proxyHeader.WriteTo(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

func TestForwardedHeaders(t *testing.T) {
	s := newProxyStack(t, nil, "-trusted-proxies", "127.0.0.2/32", "-proxy-protocol-cidrs", "127.0.0.3/32")
	lbHeader := &proxyproto.Header{
		Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 40000},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("198.51.100.10"), Port: 443},
	}
	spoofed := http.Header{
		"X-Forwarded-For":   {"1.2.3.4"},
		"X-Real-Ip":         {"1.2.3.4"},
		"X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Forwarded-Port":  {"8080"},
		"Forwarded":         {"for=1.2.3.4;proto=http"},
	}
	tests := []struct {
		name   string
		plain  bool   // port 80 instead of 443
		from   string // local address of the client
		lb     *proxyproto.Header
		host   string // URL host, i.e. the Host header ("" = shop.example.com)
		header http.Header
		want   map[string]string // "" means absent
	}{
		{
			name: "direct client",
			from: "127.0.0.1",
			want: map[string]string{"Host": "shop.example.com", "X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1",
				"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com", "X-Forwarded-Port": "443"},
		},
		{
			name: "direct client spoofing every header",
			from: "127.0.0.1", header: spoofed,
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "https",
				"X-Forwarded-Host": "shop.example.com", "X-Forwarded-Port": "443", "Forwarded": ""},
		},
		{
			name: "trusted proxy: its values are kept and extended",
			from: "127.0.0.2",
			header: http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"shop.example.com"}, "X-Forwarded-Port": {"80"}, "X-Real-Ip": {"6.6.6.6"}},
			want: map[string]string{"X-Forwarded-For": "203.0.113.5, 127.0.0.2", "X-Real-Ip": "203.0.113.5",
				"X-Forwarded-Proto": "http", "X-Forwarded-Port": "80"},
		},
		{
			name:   "trusted proxy chain: the rightmost untrusted address is the client",
			from:   "127.0.0.2",
			header: http.Header{"X-Forwarded-For": {"10.9.9.9, 198.51.100.1", "127.0.0.2"}},
			want:   map[string]string{"X-Forwarded-For": "10.9.9.9, 198.51.100.1, 127.0.0.2, 127.0.0.2", "X-Real-Ip": "198.51.100.1"},
		},
		{
			name:   "trusted proxy with garbage in the chain",
			from:   "127.0.0.2",
			header: http.Header{"X-Forwarded-For": {"not-an-ip, 127.0.0.2"}},
			want:   map[string]string{"X-Real-Ip": "127.0.0.2"},
		},
		{
			name: "trusted proxy without headers",
			from: "127.0.0.2",
			want: map[string]string{"X-Forwarded-For": "127.0.0.2", "X-Real-Ip": "127.0.0.2", "X-Forwarded-Proto": "https"},
		},
		{
			name: "Host with a port",
			from: "127.0.0.1", host: "shop.example.com:8443",
			want: map[string]string{"Host": "shop.example.com:8443", "X-Forwarded-Host": "shop.example.com:8443", "X-Forwarded-Port": "8443"},
		},
		{
			name:  "plain HTTP",
			plain: true, from: "127.0.0.1", header: spoofed,
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Port": "80"},
		},
		{
			name: "behind a load balancer speaking PROXY protocol",
			from: "127.0.0.3", lb: lbHeader, header: spoofed,
			want: map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.9", "X-Forwarded-Proto": "https"},
		},
		{
			name:  "plain HTTP behind a load balancer speaking PROXY protocol",
			plain: true, from: "127.0.0.3", lb: lbHeader,
			want: map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.9", "X-Forwarded-Proto": "http"},
		},
		{
			name: "hop-by-hop headers are removed",
			from: "127.0.0.1",
			header: http.Header{"Connection": {"X-Private"}, "X-Private": {"secret"}, "Keep-Alive": {"timeout=5"},
				"Proxy-Authorization": {"Basic Zm9vOmJhcg=="}, "X-Kept": {"yes"}},
			want: map[string]string{"X-Private": "", "Keep-Alive": "", "Proxy-Authorization": "", "X-Kept": "yes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = "shop.example.com"
			}
			tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				target := s.gw.https
				if tt.plain {
					target = s.gw.http
				}
				return dialFrom(tt.from, tt.lb)(ctx, network, target)
			}}
			scheme := "https"
			if tt.plain {
				scheme = "http"
			} else {
				tr.TLSClientConfig = &tls.Config{ServerName: "shop.example.com", RootCAs: s.ca.Pool}
			}
			defer tr.CloseIdleConnections()
			before := len(s.up.requests())
			code, body, _ := do(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "GET", scheme+"://"+host+"/path?q=1", tt.header)
			if code != 200 || body != "upstream" {
				t.Fatalf("got %d %q, want the upstream's 200", code, body)
			}
			if len(s.up.requests()) != before+1 {
				t.Fatal("the upstream did not get exactly one request")
			}
			got := s.up.last(t)
			if got.URL.RequestURI() != "/path?q=1" {
				t.Errorf("upstream got %q, want /path?q=1", got.URL.RequestURI())
			}
			for k, want := range tt.want {
				v := strings.Join(got.Header.Values(k), ", ")
				if k == "Host" {
					v = got.Host
				}
				if v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

func TestStatusCodes(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, "upstream")
	}
	s := newProxyStack(t, slow, "-upstream-response-timeout", "300ms", "-max-header-bytes", "16KiB")
	down := freeClosedAddr(t)
	s.cs.put(s.ca, "down.example.com", &certstorev1.Route{Upstream: down})
	second := startRecorder(t, "second upstream", nil)
	s.cs.put(s.ca, "elsewhere.example.com", &certstorev1.Route{Upstream: second.addr})

	big := http.Header{"X-Big": {strings.Repeat("a", 20<<10)}}
	// HTTP/2 (Go's server) answers 431 to a header list over the limit that arrives in
	// one frame; a single oversized string, or CONTINUATION frames past the limit, close
	// the connection instead. Huffman coding keeps these 21 KB in one 16 KB frame.
	many := http.Header{}
	for i := range 30 {
		many.Set(fmt.Sprintf("X-Part-%d", i), strings.Repeat("a", 700))
	}
	tests := []struct {
		name         string
		sni, url     string
		plain, h2    bool
		header       http.Header
		wantCode     int
		wantBody     string
		reachesUp    bool
		maxTook      time.Duration
		reachesOther bool
	}{
		{name: "proxied", sni: "shop.example.com", url: "https://shop.example.com/", wantCode: 200, wantBody: "upstream", reachesUp: true},
		{name: "route's own upstream", sni: "elsewhere.example.com", url: "https://elsewhere.example.com/", wantCode: 200, wantBody: "second upstream", reachesOther: true},
		{name: "Host is another served name: 421", sni: "shop.example.com", url: "https://other.example.com/", wantCode: 421, wantBody: "misdirected request"},
		{name: "Host is an IP: 421", sni: "shop.example.com", url: "https://127.0.0.1/", wantCode: 421, wantBody: "misdirected request"},
		{name: "Host in upper case is the same name", sni: "shop.example.com", url: "https://SHOP.example.com./", wantCode: 200, reachesUp: true},
		{name: "421 over HTTP/2 too", sni: "shop.example.com", url: "https://other.example.com/", h2: true, wantCode: 421},
		{name: "oversized headers: 431", sni: "shop.example.com", url: "https://shop.example.com/", header: big, wantCode: 431},
		{name: "oversized headers over HTTP/2: 431", sni: "shop.example.com", url: "https://shop.example.com/", h2: true, header: many, wantCode: 431},
		{name: "oversized headers on port 80: 431", plain: true, url: "http://shop.example.com/", header: big, wantCode: 431},
		{name: "unreachable upstream: 502", sni: "down.example.com", url: "https://down.example.com/", wantCode: 502, wantBody: "upstream unreachable"},
		{name: "slow upstream: 504", sni: "shop.example.com", url: "https://shop.example.com/slow", wantCode: 504, wantBody: "upstream timed out", reachesUp: true, maxTook: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.gw.plainClient()
			if !tt.plain {
				c = s.gw.client(tt.sni, tt.h2)
			}
			upBefore, otherBefore := len(s.up.requests()), len(second.requests())
			start := time.Now()
			var code int
			var body string
			if tt.h2 {
				// Go's HTTP/2 client will not send more than the server's advertised header
				// limit, so the request is written frame by frame.
				code, body = h2Get(t, s.gw.https, tt.sni, s.ca, tt.url, tt.header)
			} else {
				code, body, _ = do(t, c, "GET", tt.url, tt.header)
			}
			if code != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", code, body, tt.wantCode)
			}
			if tt.wantBody != "" && strings.TrimSpace(body) != tt.wantBody && !strings.HasPrefix(body, tt.wantBody) {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if got := len(s.up.requests()) > upBefore; got != tt.reachesUp {
				t.Errorf("default upstream reached = %v, want %v", got, tt.reachesUp)
			}
			if got := len(second.requests()) > otherBefore; got != tt.reachesOther {
				t.Errorf("route's upstream reached = %v, want %v", got, tt.reachesOther)
			}
			if tt.maxTook > 0 && time.Since(start) > tt.maxTook {
				t.Errorf("took %v, want under %v", time.Since(start), tt.maxTook)
			}
		})
	}
}

// TestMetricsFollowTraffic: the admin /metrics counts handshakes by result, cache hits
// and misses, lookups, upstream responses by code and failures by reason.
func TestMetricsFollowTraffic(t *testing.T) {
	s := newProxyStack(t, nil, "-upstream-response-timeout", "300ms")
	s.cs.put(s.ca, "down.example.com", &certstorev1.Route{Upstream: freeClosedAddr(t)})
	c := s.gw.client("shop.example.com", false)
	for range 3 {
		do(t, c, "GET", "https://shop.example.com/", nil)
	}
	do(t, c, "GET", "https://other.example.com/", nil)
	do(t, s.gw.client("down.example.com", false), "GET", "https://down.example.com/", nil)
	s.gw.handshake("unknown.example.net")
	do(t, s.gw.plainClient(), "GET", "http://secure.example.com/.well-known/acme-challenge/x", nil)

	tests := []struct {
		metric, labels string
		atLeast        float64
	}{
		{"gateway_tls_handshakes_total", `result="fetched"`, 2},
		{"gateway_tls_handshakes_total", `result="unknown"`, 1},
		{"gateway_cert_cache_hits_total", `state="fresh"`, 3},
		{"gateway_cert_cache_misses_total", "", 3},
		{"gateway_cert_cache_entries", `cache="positive"`, 2},
		{"gateway_cert_cache_entries", `cache="negative"`, 1},
		{"gateway_cert_cache_bytes", "", 2000},
		{"gateway_certstore_lookup_duration_seconds_count", `result="found"`, 2},
		{"gateway_certstore_lookup_duration_seconds_count", `result="not_found"`, 1},
		{"gateway_certstore_watch_connected", "", 1},
		{"gateway_http_requests_total", `outcome="proxied"`, 4},
		{"gateway_http_requests_total", `outcome="misdirected"`, 1},
		{"gateway_http_requests_total", `outcome="challenge"`, 1},
		{"gateway_upstream_responses_total", `code="200",target="upstream"`, 3},
		{"gateway_upstream_responses_total", `code="200",target="notary"`, 1},
		{"gateway_upstream_failures_total", `reason="unreachable"`, 1},
		{"gateway_upstream_response_seconds_count", `target="upstream"`, 4},
	}
	for _, tt := range tests {
		t.Run(tt.metric+"{"+tt.labels+"}", func(t *testing.T) {
			if got := s.gw.metric(tt.metric, tt.labels); got < tt.atLeast {
				t.Errorf("%v, want at least %v", got, tt.atLeast)
			}
		})
	}
}

// freeClosedAddr is a loopback address nothing listens on.
func freeClosedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSlowClientsCutOff: a client that trickles its request headers, or never sends its
// TLS ClientHello, is disconnected at the header timeout.
func TestSlowClientsCutOff(t *testing.T) {
	s := newProxyStack(t, nil, "-read-header-timeout", "500ms")
	tests := []struct {
		name    string
		dial    func(t *testing.T) (net.Conn, error)
		trickle bool // send a header line every 100ms; otherwise send nothing
	}{
		{name: "plain HTTP, headers trickling", trickle: true, dial: func(*testing.T) (net.Conn, error) {
			return net.Dial("tcp", s.gw.http)
		}},
		{name: "HTTPS, headers trickling after the handshake", trickle: true, dial: func(*testing.T) (net.Conn, error) {
			return tls.Dial("tcp", s.gw.https, &tls.Config{ServerName: "shop.example.com", RootCAs: s.ca.Pool, NextProtos: []string{"http/1.1"}})
		}},
		{name: "TLS handshake never begun", dial: func(*testing.T) (net.Conn, error) {
			return net.Dial("tcp", s.gw.https)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.dial(t)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				io.Copy(io.Discard, c) // returns when the server closes
				closed <- time.Since(start)
			}()
			if tt.trickle {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop.example.com\r\n")
				go func() {
					for range 50 {
						time.Sleep(100 * time.Millisecond)
						if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
							return
						}
					}
				}()
			}
			select {
			case took := <-closed:
				if took < 400*time.Millisecond || took > 2*time.Second {
					t.Fatalf("cut off after %v, want about the 500ms header timeout", took)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a slow client was never cut off")
			}
		})
	}
	if n := len(s.up.requests()); n != 0 {
		t.Errorf("upstream got %d requests from slow clients", n)
	}
}

func TestPlainHTTPRoutingAndChallenges(t *testing.T) {
	s := newProxyStack(t, nil)
	tests := []struct {
		name         string
		url          string
		wantCode     int
		wantNotary   bool
		wantUpstream bool
		wantLocation string
	}{
		{name: "ACME challenge of a redirecting domain", url: "http://secure.example.com/.well-known/acme-challenge/tok123", wantCode: 200, wantNotary: true},
		{name: "PKI validation", url: "http://secure.example.com/.well-known/pki-validation/fileauth.txt", wantCode: 200, wantNotary: true},
		{name: "challenge of a proxied domain", url: "http://shop.example.com/.well-known/acme-challenge/tok", wantCode: 200, wantNotary: true},
		{name: "challenge of a domain without a certificate yet", url: "http://pending.example.net/.well-known/acme-challenge/tok", wantCode: 200, wantNotary: true},
		{name: "challenge with a port in Host", url: "http://secure.example.com:80/.well-known/acme-challenge/tok", wantCode: 200, wantNotary: true},
		{name: "challenge reached through dot segments", url: "http://shop.example.com/x/../.well-known/acme-challenge/tok", wantCode: 200, wantNotary: true},
		{name: "dot segments out of the challenge path", url: "http://shop.example.com/.well-known/acme-challenge/../../admin", wantCode: 200, wantUpstream: true},
		{name: "another well-known path follows the route", url: "http://shop.example.com/.well-known/security.txt", wantCode: 200, wantUpstream: true},
		{name: "redirecting domain", url: "http://secure.example.com/a/b?c=d", wantCode: 308, wantLocation: "https://secure.example.com/a/b?c=d"},
		{name: "redirecting domain, Host with a port", url: "http://SECURE.example.com:8000/", wantCode: 308, wantLocation: "https://secure.example.com/"},
		{name: "proxied domain", url: "http://shop.example.com/", wantCode: 200, wantUpstream: true},
		{name: "unknown host", url: "http://unknown.example.net/", wantCode: 404},
		{name: "IP host", url: "http://127.0.0.1/", wantCode: 404},
	}
	c := s.gw.plainClient()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb, ub := len(s.notary.requests()), len(s.up.requests())
			code, body, header := do(t, c, "GET", tt.url, nil)
			if code != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", code, body, tt.wantCode)
			}
			if got := len(s.notary.requests()) > nb; got != tt.wantNotary {
				t.Errorf("notary reached = %v, want %v", got, tt.wantNotary)
			}
			if got := len(s.up.requests()) > ub; got != tt.wantUpstream {
				t.Errorf("upstream reached = %v, want %v", got, tt.wantUpstream)
			}
			if tt.wantNotary {
				r := s.notary.last(t)
				if want := strings.TrimPrefix(tt.url, "http://"); r.Host+r.URL.RequestURI() != want {
					t.Errorf("notary got %s%s, want %s", r.Host, r.URL.RequestURI(), want)
				}
			}
			if loc := header.Get("Location"); loc != tt.wantLocation {
				t.Errorf("Location = %q, want %q", loc, tt.wantLocation)
			}
		})
	}
}

func TestWebSocketAndHTTP2(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			fmt.Fprintf(w, "%s %s", r.Proto, r.Host)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw) // echo
	}
	s := newProxyStack(t, echo)

	t.Run("HTTP/2 to the client, HTTP/1.1 upstream", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://shop.example.com/", nil)
		resp, err := s.gw.client("shop.example.com", true).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 2 || string(b) != "HTTP/1.1 shop.example.com" {
			t.Fatalf("client spoke %s, upstream saw %q", resp.Proto, b)
		}
	})

	t.Run("WebSocket upgrade", func(t *testing.T) {
		c, err := tls.Dial("tcp", s.gw.https, &tls.Config{ServerName: "shop.example.com", RootCAs: s.ca.Pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: shop.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		io.WriteString(c, "ping through the tunnel")
		buf := make([]byte, len("ping through the tunnel"))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping through the tunnel" {
			t.Fatalf("echo %q, %v", buf, err)
		}
	})
}

// h2Get sends one GET over a fresh HTTP/2 connection with hand-written frames, ignoring
// the server's advertised header list size, and returns the status and body.
func h2Get(t *testing.T, addr, sni string, ca *testpki.CA, rawURL string, header http.Header) (int, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: ca.Pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("ALPN chose %q, want h2", c.ConnectionState().NegotiatedProtocol)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(64<<10, nil)
	fr.MaxHeaderListSize = 1 << 20
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	enc.SetMaxDynamicTableSizeLimit(0)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", u.Host}, {":path", u.RequestURI()}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for k, vs := range header {
		for _, v := range vs {
			enc.WriteField(hpack.HeaderField{Name: strings.ToLower(k), Value: v})
		}
	}
	// One HEADERS frame and CONTINUATIONs of at most 16 KiB each.
	b := block.Bytes()
	first := b[:min(len(b), 16<<10)]
	b = b[len(first):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(b) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 {
		chunk := b[:min(len(b), 16<<10)]
		b = b[len(chunk):]
		if err := fr.WriteContinuation(1, len(b) == 0, chunk); err != nil {
			t.Fatal(err)
		}
	}
	status, body := 0, ""
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read HTTP/2 frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			status, _ = strconv.Atoi(f.PseudoValue("status"))
			if f.StreamEnded() {
				return status, body
			}
		case *http2.DataFrame:
			body += string(f.Data())
			if f.StreamEnded() {
				return status, body
			}
		case *http2.GoAwayFrame:
			t.Fatalf("server sent GOAWAY (%v) instead of a response", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("server reset the stream (%v)", f.ErrCode)
		}
	}
}
