package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/handshake"
	"github.com/portico-dev/portico/services/gateway/internal/httpwire"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// These tests run the HTTPS server (fast path and net/http behind it) on loopback with a
// real TLS listener, against upstreams that are real TCP servers, and speak raw HTTP/1.1
// to it, so every byte on both sides is what a client and an upstream would see.

// names maps served names to their entries, as the certificate cache would (a lookup
// allocates nothing, like handshake.Selector's for a cached name).
type names map[string]*certcache.Entry

func (n names) Resolve(_ context.Context, raw string) (*certcache.Entry, handshake.Result, error) {
	e, ok := n[raw]
	if !ok {
		return nil, handshake.ResultUnknown, errkind.New(errkind.NotFound, "no certificate for this name")
	}
	return e, handshake.ResultHit, nil
}

// upstream is a raw HTTP/1.1 server: each request (parsed by net/http's reader) is
// recorded and answered by answer's bytes; close=true closes the connection after it.
type upstream struct {
	addr   string
	answer func(r *http.Request, body []byte) (resp string, close bool)
	mu     sync.Mutex
	got    []recorded
	conns  atomic.Int64
	closed chan struct{} // a connection ended (signalled without blocking)
}

type recorded struct {
	req  *http.Request
	body string
}

func startUpstream(t testing.TB, answer func(r *http.Request, body []byte) (string, bool)) *upstream {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: lis.Addr().String(), answer: answer, closed: make(chan struct{}, 100)}
	if u.answer == nil {
		u.answer = func(*http.Request, []byte) (string, bool) {
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nupstream", false
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					select {
					case u.closed <- struct{}{}:
					default:
					}
				}()
				u.serve(c)
			}()
		}
	}()
	return u
}

func (u *upstream) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		u.mu.Lock()
		u.got = append(u.got, recorded{req: req, body: string(body)})
		u.mu.Unlock()
		resp, closeAfter := u.answer(req, body)
		// "<pause>" in an answer splits it into two writes 100 ms apart.
		first, rest, paused := strings.Cut(resp, "<pause>")
		if _, err := io.WriteString(c, first); err != nil {
			return
		}
		if paused {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, rest); err != nil {
				return
			}
		}
		if closeAfter {
			return
		}
	}
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.got...)
}

// fastStack is a proxy with its HTTPS server on loopback.
type fastStack struct {
	addr  string
	p     *Proxy
	ca    *testpki.CA
	stop  func() error
	names names
}

func startFast(t testing.TB, up *upstream, sc ServerConfig, pc Config) *fastStack {
	t.Helper()
	ca := testpki.NewCA(t)
	leaf := ca.Issue(t, "shop.example.com", "other.example.com")
	if pc.DefaultUpstream == "" {
		pc.DefaultUpstream = up.addr
	}
	n := names{"shop.example.com": {Name: "shop.example.com"}, "other.example.com": {Name: "other.example.com"}}
	p := New(pc, n, zap.NewNop(), nil)
	t.Cleanup(p.Close)
	if sc.MaxHeaderBytes == 0 {
		sc.MaxHeaderBytes = 16 << 10
	}
	if sc.ReadHeaderTimeout == 0 {
		sc.ReadHeaderTimeout = 5 * time.Second
	}
	if sc.IdleTimeout == 0 {
		sc.IdleTimeout = 30 * time.Second
	}
	srv := p.NewHTTPSServer(&tls.Config{
		Certificates: []tls.Certificate{*leaf.Cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}, sc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, lis, 2*time.Second) }()
	s := &fastStack{addr: lis.Addr().String(), p: p, ca: ca, names: n}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(5 * time.Second):
				stopErr = errors.New("the HTTPS server did not stop within 5 s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// dial opens an HTTP/1.1 TLS connection for sni.
func (s *fastStack) dial(t testing.TB, sni string) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{ServerName: sni, RootCAs: s.ca.Pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// roundTrip writes raw and reads one response (method: the request's, for HEAD).
func roundTrip(t testing.TB, c net.Conn, br *bufio.Reader, raw, method string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, br, method)
}

func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// closedByServer reports whether the server closed the connection (within a second).
func closedByServer(c net.Conn, br *bufio.Reader) bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestFastPathForwards(t *testing.T) {
	up := startUpstream(t, nil)
	s := startFast(t, up, ServerConfig{FastPath: true}, Config{})
	tests := []struct {
		name       string
		raw        string
		method     string
		wantStatus int
		wantBody   string
		wantUp     map[string]string // header on the upstream side ("" = absent)
		wantUpBody string
	}{
		{
			name: "GET: forwarded headers set, spoofed ones replaced, hop-by-hop removed",
			raw: "GET /a?b=1 HTTP/1.1\r\nHost: shop.example.com\r\nConnection: keep-alive, X-Private\r\nX-Private: secret\r\n" +
				"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-For: 1.2.3.4\r\nX-Real-Ip: 1.2.3.4\r\n" +
				"Forwarded: for=1.2.3.4\r\nX-Forwarded-Port: 80\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n",
			wantStatus: 200, wantBody: "upstream",
			wantUp: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "https",
				"X-Forwarded-Host": "shop.example.com", "X-Forwarded-Port": "443", "X-Private": "", "Keep-Alive": "",
				"Proxy-Authorization": "", "Forwarded": "", "Te": "trailers", "X-Kept": "yes"},
		},
		{
			name: "Host with a port", raw: "GET / HTTP/1.1\r\nHost: SHOP.example.com:8443\r\n\r\n",
			wantStatus: 200, wantUp: map[string]string{"X-Forwarded-Port": "8443", "X-Forwarded-Host": "SHOP.example.com:8443"},
		},
		{
			name: "POST with a body", raw: "POST /form HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 11\r\n\r\nhello world",
			wantStatus: 200, wantUpBody: "hello world",
		},
		{
			name:       "chunked request body (served by net/http)",
			raw:        "POST /up HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			wantStatus: 200, wantUpBody: "hello", wantUp: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"},
		},
		{
			name: "HTTP/1.0 (served by net/http)", raw: "GET / HTTP/1.0\r\nHost: shop.example.com\r\n\r\n",
			wantStatus: 200, wantBody: "upstream", wantUp: map[string]string{"X-Forwarded-Proto": "https"},
		},
		{
			name: "Host of another name on the certificate: 421", raw: "GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
			wantStatus: 421, wantBody: "misdirected request: the Host does not match the TLS server name\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := s.dial(t, "shop.example.com")
			before := len(up.requests())
			method := tt.method
			if method == "" {
				method = "GET"
			}
			resp, body := roundTrip(t, c, br, tt.raw, method)
			if resp.StatusCode != tt.wantStatus || tt.wantBody != "" && body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus != 200 {
				if len(up.requests()) != before {
					t.Fatal("the upstream was reached")
				}
				return
			}
			got := up.requests()
			if len(got) != before+1 {
				t.Fatalf("upstream got %d requests, want 1", len(got)-before)
			}
			last := got[len(got)-1]
			for k, want := range tt.wantUp {
				if v := strings.Join(last.req.Header.Values(k), ", "); v != want {
					t.Errorf("upstream %s = %q, want %q", k, v, want)
				}
			}
			if last.body != tt.wantUpBody {
				t.Errorf("upstream body %q, want %q", last.body, tt.wantUpBody)
			}
			if resp.Header.Get("Date") == "" {
				t.Error("no Date in the response")
			}
		})
	}
}

// TestFastPathRefuses: the request smuggling rules of RFC 9112 and the header limit
// hold on the fast path: 400 or 431, the connection closed, nothing sent upstream.
func TestFastPathRefuses(t *testing.T) {
	up := startUpstream(t, nil)
	s := startFast(t, up, ServerConfig{FastPath: true, MaxHeaderBytes: 4096}, Config{})
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"conflicting Content-Lengths", "POST / HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello", 400},
		{"invalid Content-Length", "POST / HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 0x5\r\n\r\nhello", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: shop.example.com\r\nX-A: 1\r\n\t2\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: shop.example.com\r\nX-A: 1\r2\r\n\r\n", 400},
		{"whitespace before a colon", "GET / HTTP/1.1\r\nHost: shop.example.com\r\nX-A : 1\r\n\r\n", 400},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: shop.example.com\r\nHost: other.example.com\r\n\r\n", 400},
		{"headers over the limit", "GET / HTTP/1.1\r\nHost: shop.example.com\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := s.dial(t, "shop.example.com")
			before := len(up.requests())
			resp, _ := roundTrip(t, c, br, tt.raw, "GET")
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if !resp.Close {
				t.Error("response without Connection: close")
			}
			if !closedByServer(c, br) {
				t.Error("connection still open")
			}
			if len(up.requests()) != before {
				t.Error("the upstream was reached")
			}
		})
	}
}

// TestFastPathResponses: what upstreams answer reaches the client with its framing
// intact: lengths, chunked bodies with trailers, bodies delimited by the close, interim
// responses; bad framing from an upstream cuts the client connection.
func TestFastPathResponses(t *testing.T) {
	answers := map[string]string{
		"/length":    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\nhello",
		"/chunked":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
		"/close":     "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"/no-length": "HTTP/1.1 200 OK\r\n\r\nuntil the end",
		"/204":       "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
		"/hints":     "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/bad-chunk": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
		"/bad-later": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n<pause>zz\r\n",
		"/short":     "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
		"/large":     "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000),
		"/head":      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
		"/garbage":   "HTTP/9 what\r\n\r\n",
	}
	up := startUpstream(t, func(r *http.Request, _ []byte) (string, bool) {
		a := answers[r.URL.Path]
		return a, r.URL.Path == "/close" || r.URL.Path == "/no-length" || r.URL.Path == "/short" || r.URL.Path == "/garbage"
	})
	s := startFast(t, up, ServerConfig{FastPath: true}, Config{})
	tests := []struct {
		path, method string
		wantStatus   int
		wantBody     string
		wantTrailer  string
		wantClose    bool // the client connection ends after the response
		broken       bool // the body cannot be read whole
	}{
		{path: "/length", wantStatus: 200, wantBody: "hello"},
		{path: "/chunked", wantStatus: 200, wantBody: "hello world", wantTrailer: "42"},
		{path: "/close", wantStatus: 200, wantBody: "until the end", wantClose: true},
		{path: "/no-length", wantStatus: 200, wantBody: "until the end", wantClose: true},
		{path: "/204", wantStatus: 204},
		{path: "/hints", wantStatus: 200, wantBody: "ok"},
		{path: "/large", wantStatus: 200, wantBody: strings.Repeat("x", 100000)},
		{path: "/head", method: "HEAD", wantStatus: 200},
		{path: "/garbage", wantStatus: 502, wantBody: "bad gateway\n"},
		{path: "/bad-chunk", wantStatus: 502, wantBody: "bad gateway\n"},
		{path: "/bad-later", wantStatus: 200, broken: true},
		{path: "/short", wantStatus: 200, broken: true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			c, br := s.dial(t, "shop.example.com")
			method := tt.method
			if method == "" {
				method = "GET"
			}
			io.WriteString(c, method+" "+tt.path+" HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			if tt.path == "/hints" {
				if resp.StatusCode != 103 || resp.Header.Get("Link") == "" {
					t.Fatalf("first response %d %v, want the 103 with its Link", resp.StatusCode, resp.Header)
				}
				if resp, err = http.ReadResponse(br, &http.Request{Method: method}); err != nil {
					t.Fatal(err)
				}
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			body, err := io.ReadAll(resp.Body)
			if tt.broken {
				if err == nil {
					t.Fatalf("read %q whole, want the connection cut", body)
				}
				return
			}
			if err != nil || string(body) != tt.wantBody {
				t.Fatalf("body %q (%v), want %q", body, err, tt.wantBody)
			}
			if got := resp.Trailer.Get("X-Sum"); got != tt.wantTrailer {
				t.Errorf("trailer %q, want %q", got, tt.wantTrailer)
			}
			if tt.method == "HEAD" && resp.ContentLength != 100 {
				t.Errorf("HEAD Content-Length %d, want the upstream's 100", resp.ContentLength)
			}
			if resp.Close != tt.wantClose {
				t.Errorf("Connection: close = %v, want %v", resp.Close, tt.wantClose)
			}
			if !tt.wantClose {
				// The connection still serves: a second request gets its answer.
				resp, body := roundTrip(t, c, br, "GET /length HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "GET")
				if resp.StatusCode != 200 || body != "hello" {
					t.Fatalf("next request: %d %q", resp.StatusCode, body)
				}
			}
		})
	}
}

// TestFastPathKeepsAndRenewsUpstreamConnections: keep-alive requests share one upstream
// connection; one the upstream closed while idle is replaced without the client seeing
// an error, for idempotent and non-idempotent requests alike.
func TestFastPathKeepsAndRenewsUpstreamConnections(t *testing.T) {
	var closeNext atomic.Bool
	up := startUpstream(t, func(r *http.Request, _ []byte) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", closeNext.Swap(false)
	})
	s := startFast(t, up, ServerConfig{FastPath: true}, Config{})
	c, br := s.dial(t, "shop.example.com")
	for range 5 {
		if resp, _ := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for 5 keep-alive requests, want 1", n)
	}
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 1\r\n\r\nx",
	} {
		closeNext.Store(true)
		roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "GET")
		<-up.closed // the upstream closed its side after answering, without saying so
		if resp, body := roundTrip(t, c, br, req, "GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after the upstream closed: %d %q", resp.StatusCode, body)
		}
	}
}

// TestFastPathPipelining: requests sent back to back are answered in order.
func TestFastPathPipelining(t *testing.T) {
	up := startUpstream(t, func(r *http.Request, _ []byte) (string, bool) {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path), false
	})
	s := startFast(t, up, ServerConfig{FastPath: true}, Config{})
	c, br := s.dial(t, "shop.example.com")
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: shop.example.com\r\n\r\nGET /two HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"+
		"POST /three HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 3\r\n\r\nabc")
	for _, want := range []string{"/one", "/two", "/three"} {
		if _, body := readResponse(t, br, "GET"); body != want {
			t.Fatalf("body %q, want %q", body, want)
		}
	}
}

// TestFastPathTimeouts: an idle keep-alive connection is closed at the idle timeout, a
// client trickling its head at the header timeout, an upstream without response headers
// gets 504 at the response timeout.
func TestFastPathTimeouts(t *testing.T) {
	up := startUpstream(t, func(r *http.Request, _ []byte) (string, bool) {
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	s := startFast(t, up, ServerConfig{FastPath: true, IdleTimeout: 400 * time.Millisecond, ReadHeaderTimeout: 400 * time.Millisecond},
		Config{ResponseHeaderTimeout: 300 * time.Millisecond})
	tests := []struct {
		name     string
		run      func(c *tls.Conn, br *bufio.Reader)
		min, max time.Duration
	}{
		{name: "idle", run: func(c *tls.Conn, br *bufio.Reader) {
			roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "GET")
		}, min: 350 * time.Millisecond, max: 1500 * time.Millisecond},
		{name: "trickled head", run: func(c *tls.Conn, _ *bufio.Reader) {
			io.WriteString(c, "GET / HTTP/1.1\r\n")
			go func() {
				for range 20 {
					time.Sleep(100 * time.Millisecond)
					if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
						return
					}
				}
			}()
		}, min: 350 * time.Millisecond, max: 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := s.dial(t, "shop.example.com")
			tt.run(c, br)
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, br)
			took := time.Since(start)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Logf("read ended with %v", err)
			}
			if took < tt.min || took > tt.max {
				t.Fatalf("closed after %v, want %v..%v", took, tt.min, tt.max)
			}
		})
	}
	t.Run("slow upstream", func(t *testing.T) {
		c, br := s.dial(t, "shop.example.com")
		start := time.Now()
		resp, body := roundTrip(t, c, br, "GET /slow HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "GET")
		if resp.StatusCode != 504 || body != "upstream timed out\n" || time.Since(start) > time.Second {
			t.Fatalf("%d %q after %v, want 504 at the 300ms timeout", resp.StatusCode, body, time.Since(start))
		}
	})
}

// TestFastPathClientGone: a client that leaves while the upstream is thinking cancels
// the upstream request (its connection is closed) and is counted as client_gone.
func TestFastPathClientGone(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(r *http.Request, _ []byte) (string, bool) {
		<-release
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	t.Cleanup(func() { close(release) }) // before the upstream's cleanup waits for it
	s := startFast(t, up, ServerConfig{FastPath: true}, Config{})
	c, _ := s.dial(t, "shop.example.com")
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for len(up.requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	for time.Now().Before(deadline) {
		if testutil.ToFloat64(s.p.m.failures[targetUpstream][failureClientGone]) == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the client's leaving was not noticed within 5 s")
}

// TestFastPathShutdown: shutdown lets a request in flight finish (its response says
// Connection: close), closes idle connections, and returns well within the grace.
func TestFastPathShutdown(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(r *http.Request, _ []byte) (string, bool) {
		if r.URL.Path == "/slow" {
			<-release
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	s := startFast(t, up, ServerConfig{FastPath: true}, Config{})
	idle, idleBr := s.dial(t, "shop.example.com")
	roundTrip(t, idle, idleBr, "GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", "GET")
	busy, busyBr := s.dial(t, "shop.example.com")
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
	for len(up.requests()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- s.stop() }()
	if !closedByServer(idle, idleBr) {
		t.Error("idle connection not closed at shutdown")
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	resp, body := readResponse(t, busyBr, "GET")
	if resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Errorf("in-flight request: %d %q close=%v, want 200 ok and Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopped after %v", took)
	}
}

// BenchmarkProxyKeepAlive is the keep-alive proxy path end to end over loopback: a TLS
// client with one persistent connection, the HTTPS server, an upstream answering 20
// bytes (the shared harness's request and response). allocs/op are per request, the
// client's included: crypto/tls allocates one small reader per record read, on the
// client's side and the gateway's; the upstream here allocates nothing.
func BenchmarkProxyKeepAlive(b *testing.B) {
	for _, bc := range []struct {
		name string
		fast bool
	}{{"fast-path", true}, {"net-http", false}} {
		b.Run(bc.name, func(b *testing.B) {
			up := startBenchUpstream(b)
			s := startFast(b, &upstream{addr: up}, ServerConfig{FastPath: bc.fast}, Config{})
			c, _ := s.dial(b, "shop.example.com")
			c.SetDeadline(time.Time{})
			req := []byte("GET / HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: sni-bench-loadgen\r\n\r\n")
			buf := make([]byte, 4096)
			var resp httpwire.Response
			read := func() {
				n := 0
				for {
					k, err := c.Read(buf[n:])
					if err != nil {
						b.Fatal(err)
					}
					n += k
					ok, err := httpwire.ParseResponse(buf[:n], len(buf), &resp)
					if err != nil {
						b.Fatal(err)
					}
					if ok && n >= resp.HeadLen+int(resp.ContentLength) {
						if resp.Status != 200 {
							b.Fatalf("status %d", resp.Status)
						}
						return
					}
				}
			}
			c.Write(req) // warm up: upstream connection, buffers
			read()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				read()
			}
		})
	}
}

// startBenchUpstream is an upstream that allocates nothing per request: it reads up to
// the end of each head and writes a fixed response.
func startBenchUpstream(b *testing.B) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lis.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nhello from upstream\n")
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8192)
				n := 0
				for {
					k, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += k
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						n = copy(buf, buf[i+4:n])
						if _, err := c.Write(resp); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return lis.Addr().String()
}
