package acmetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy is an HTTPS reverse proxy in front of Pebble's ACME API that counts the orders
// Pebble created and can answer new-order requests with a rate-limit error instead, as
// a production CA does (Pebble has no rate limits of its own).
//
// Pebble builds every URL from the request's Host, which the proxy keeps, so clients
// that start from the proxy's DirectoryURL stay on the proxy for the whole flow.
type Proxy struct {
	// DirectoryURL is the directory seen through the proxy.
	DirectoryURL string

	newOrderPath string
	mu           sync.Mutex
	orders       int
	limited      int
	limitQueue   []string
	replaces     []string
}

// StartProxy starts a proxy for the test; it trusts e.Pool like the clients do.
func (e *Env) StartProxy(t testing.TB) *Proxy {
	t.Helper()
	target, _ := url.Parse(e.DirectoryURL)
	target.Path = ""
	var dir struct {
		NewOrder string `json:"newOrder"`
	}
	if err := json.Unmarshal(e.get(t, e.DirectoryURL), &dir); err != nil {
		t.Fatal(err)
	}
	newOrder, _ := url.Parse(dir.NewOrder)
	p := &Proxy{newOrderPath: newOrder.Path}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Pool, MinVersion: tls.VersionTLS12}},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method == http.MethodPost && resp.Request.URL.Path == p.newOrderPath && resp.StatusCode == http.StatusCreated {
				replaces, _ := resp.Request.Context().Value(replacesKey{}).(string)
				p.mu.Lock()
				p.orders++
				p.replaces = append(p.replaces, replaces)
				p.mu.Unlock()
			}
			return nil
		},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == p.newOrderPath {
			r = r.WithContext(context.WithValue(r.Context(), replacesKey{}, readReplaces(r)))
			if retryAfter, limit := p.takeLimit(); limit {
				if retryAfter != "" {
					w.Header().Set("Retry-After", retryAfter)
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders recently (acmetest)","status":429}`)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	der, key := issueListenerCert(t, e.listenerCA, e.listenerCAKey)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.DirectoryURL = srv.URL + strings.TrimPrefix(e.DirectoryURL, "https://"+target.Host)
	return p
}

// Orders is how many orders Pebble created through the proxy.
func (p *Proxy) Orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}

// RateLimited is how many new-order requests the proxy refused.
func (p *Proxy) RateLimited() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limited
}

// RateLimitNext makes the next new-order requests fail with HTTP 429 and the
// rateLimited problem, one per retryAfter value given, each sent as its Retry-After
// header (seconds, or an HTTP date; empty sends none).
func (p *Proxy) RateLimitNext(retryAfter ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limitQueue = append(p.limitQueue, retryAfter...)
}

func (p *Proxy) takeLimit() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.limitQueue) == 0 {
		return "", false
	}
	v := p.limitQueue[0]
	p.limitQueue = p.limitQueue[1:]
	p.limited++
	return v, true
}

// Replaces lists the `replaces` field (RFC 9773) of every order Pebble created, in
// order, "" for orders that named none.
func (p *Proxy) Replaces() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.replaces...)
}

type replacesKey struct{}

// readReplaces reads the order's JWS payload's replaces field and puts the body back.
func readReplaces(r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	var jws struct {
		Payload string `json:"payload"`
	}
	var order struct {
		Replaces string `json:"replaces"`
	}
	if json.Unmarshal(body, &jws) != nil {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil || json.Unmarshal(payload, &order) != nil {
		return ""
	}
	return order.Replaces
}
