package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/examples/walkthrough"
	"github.com/portico-dev/portico/pkg/proctest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
)

// localStack is the system `make run` starts, started by the same program (runlocal)
// on free ports, with its run directory in the test's temp dir.
type localStack struct {
	dir                       string
	controlAPI, dnsManagement string
	controlAPIAdmin           string
	gatewayHTTP, gatewayHTTPS string
	adminKey                  string
	rootFile                  string
}

// startLocalStack starts the stack with the services' state in store: "redis" (a
// fresh key prefix in the test Redis) or "dynamodb" (dynalite, which runlocal starts in
// place of Redis, as `make run PORTICO_STORE=dynamodb` does).
func startLocalStack(t *testing.T, store string) localStack {
	t.Helper()
	bin := t.TempDir()
	for _, s := range []string{"certstore", "notary", "controlapi", "gateway"} {
		link(t, proctest.Build(t, s), filepath.Join(bin, "portico-"+s))
	}
	for _, e := range []struct{ name, pkg string }{{"portico-example-upstream", "./upstream"}, {"portico-runlocal", "./runlocal"}} {
		link(t, proctest.BuildPackage(t, "examples", e.pkg, e.name), filepath.Join(bin, e.name))
	}
	for _, tool := range []string{"pebble", "pebble-challtestsrv"} {
		p := filepath.Join(proctest.RepoRoot(), "bin", tool)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is not installed in bin/: run `make tools` (%v)", tool, err)
		}
		link(t, p, filepath.Join(bin, tool))
	}

	s := localStack{dir: t.TempDir()}
	_, prefix := redistest.New(t)
	addrs := map[string]string{}
	for _, name := range []string{"dns", "dns-management", "acme", "acme-management", "certstore", "certstore-admin",
		"notary", "notary-admin", "notary-http", "controlapi-grpc", "controlapi-http", "controlapi-admin",
		"gateway-http", "gateway-https", "gateway-admin", "gateway-health", "upstream"} {
		addrs[name] = proctest.FreeAddr(t)
	}
	redisAddr := redistest.Addr()
	if store == "dynamodb" {
		redisAddr = "127.0.0.1:1" // nothing may use Redis
		addrs["dynamodb"] = proctest.FreeAddr(t)
	}
	args := []string{"-bin", bin, "-dir", s.dir, "-redis", redisAddr, "-redis-key-prefix", prefix, "-store", store,
		"-dynalite", filepath.Join(proctest.RepoRoot(), "bin", "dynalite", "run.js")}
	for name, addr := range addrs {
		args = append(args, "-"+name, addr)
	}
	runlocal := proctest.Start(t, "runlocal", filepath.Join(bin, "portico-runlocal"), nil, args...)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(runlocal.Log(), "Portico is running.") {
		if runlocal.Exited() || time.Now().After(deadline) {
			t.Fatalf("make run's program did not come up:\n%s", runlocal.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		took, err := runlocal.Stop(30 * time.Second)
		if err != nil {
			t.Errorf("runlocal did not stop cleanly: %v", err)
		}
		if !strings.Contains(runlocal.Log(), "stopped gateway") {
			t.Errorf("runlocal did not stop its processes (%v):\n%s", took, runlocal.Log())
		}
	})

	s.controlAPI = "http://" + addrs["controlapi-http"]
	s.controlAPIAdmin = "http://" + addrs["controlapi-admin"]
	s.dnsManagement = "http://" + addrs["dns-management"]
	s.gatewayHTTP, s.gatewayHTTPS = addrs["gateway-http"], addrs["gateway-https"]
	s.rootFile = filepath.Join(s.dir, "pebble-root.pem")
	key, err := os.ReadFile(filepath.Join(s.dir, "admin-key"))
	if err != nil {
		t.Fatal(err)
	}
	s.adminKey = strings.TrimSpace(string(key))
	return s
}

func link(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Symlink(from, to); err != nil {
		t.Fatal(err)
	}
}

// runWalkthrough runs the demo's steps against s and checks what every store must give:
// the upstream's answer over HTTPS, then the handshake refused after the deletion.
func runWalkthrough(t *testing.T, s localStack) walkthrough.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := walkthrough.Run(ctx, walkthrough.Config{
		ControlAPI: s.controlAPI, AdminKey: s.adminKey, DNSManagement: s.dnsManagement,
		GatewayHTTPS: s.gatewayHTTPS, RootFile: s.rootFile, ActiveTimeout: 2 * time.Minute,
	}, &out)
	t.Logf("walkthrough output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Answer, "hello from the example upstream") {
		t.Fatalf("the HTTPS answer did not come from the upstream: %s", res.Answer)
	}
	if !strings.Contains(res.RefusedAfterDelete.Error(), "unrecognized name") {
		t.Fatalf("after delete the handshake failed for another reason: %v", res.RefusedAfterDelete)
	}
	return res
}

// TestWalkthroughOnDynamoDB is the walkthrough with PORTICO_STORE=dynamodb: every
// service keeps its state in DynamoDB (dynalite), Redis is pointed at nothing, and the
// domain still goes from created to ACTIVE, is served over HTTPS, and is refused after
// its deletion (which reaches the gateway through certstore's Watch on DynamoDB).
func TestWalkthroughOnDynamoDB(t *testing.T) {
	s := startLocalStack(t, "dynamodb")
	runWalkthrough(t, s)
	logs, err := os.ReadFile(filepath.Join(s.dir, "logs", "dynalite.log"))
	if err != nil {
		t.Fatalf("runlocal started no dynalite: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "logs", "redis.log")); err == nil {
		t.Fatalf("runlocal started a Redis with -store dynamodb (dynalite log: %s)", logs)
	}
}

// TestWalkthrough is `make run` then `make demo`, through the real processes: a tenant,
// a domain verified over DNS and issued by the local ACME CA through the gateway's port
// 80, served over HTTPS, then deleted and refused. A second domain then shows the edge's
// rules: the challenge paths never reach the upstream, a Host that is not the SNI name
// gets 421, unknown and missing SNI are refused at the handshake, and the upstream gets
// the forwarding headers.
func TestWalkthrough(t *testing.T) {
	s := startLocalStack(t, "redis")
	res := runWalkthrough(t, s)
	// controlapi removed the route and the certificate itself (its fencing token is
	// accepted by certstore), rather than leaving the deletion to the notary.
	metrics := httpText(t, s.controlAPIAdmin+"/metrics")
	for _, want := range []string{
		`portico_controlapi_handoffs_total{call="delete_route",result="ok"} 1`,
		`portico_controlapi_handoffs_total{call="delete_certificate",result="ok"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("controlapi metrics lack %s:\n%s", want, grepLines(metrics, "handoffs"))
		}
	}

	// A second domain of the same tenant for the edge's rules.
	const host = "www.example.com"
	api := apiClient{base: s.controlAPI, key: res.APIKey}
	var created struct {
		Domain struct {
			DNSRecords []walkthrough.Record `json:"dns_records"`
		} `json:"domain"`
	}
	api.must(t, http.MethodPost, "/v1/domains", fmt.Sprintf(`{"hostname":%q}`, host), &created)
	for _, r := range created.Domain.DNSRecords {
		publish(t, s.dnsManagement, r)
	}
	api.must(t, http.MethodPost, "/v1/domains/"+host+":verify", `{}`, nil)
	waitActive(t, api, host)

	pool := x509.NewCertPool()
	rootPEM, _ := os.ReadFile(s.rootFile)
	pool.AppendCertsFromPEM(rootPEM)

	t.Run("challenge paths never reach the upstream", func(t *testing.T) {
		for _, path := range []string{"/.well-known/acme-challenge/aGVsbG8td29ybGQ", "/.well-known/pki-validation/file.txt"} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.gatewayHTTP+path, nil)
			req.Host = host
			resp, err := (&http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirects}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "example upstream") || resp.StatusCode/100 == 3 {
				t.Fatalf("%s: %s %q reached the upstream or was redirected", path, resp.Status, body)
			}
		}
	})

	t.Run("plain HTTP elsewhere is redirected to HTTPS", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.gatewayHTTP+"/some/page?q=1", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirects}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "https://"+host) {
			t.Fatalf("got %s Location %q, want 308 to https://%s...", resp.Status, resp.Header.Get("Location"), host)
		}
	})

	t.Run("the upstream sees the forwarding headers", func(t *testing.T) {
		// As a browser does for a port other than 443, the Host carries the port; the
		// gateway reports the port the client used (docs/gateway.md).
		_, port, _ := net.SplitHostPort(s.gatewayHTTPS)
		resp := httpsGet(t, s.gatewayHTTPS, pool, host, host+":"+port)
		var seen struct {
			Host    string            `json:"host"`
			Headers map[string]string `json:"forwarded_headers"`
		}
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &seen) != nil {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
		want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Port": port}
		for k, v := range want {
			if seen.Headers[k] != v {
				t.Errorf("upstream saw %s = %q, want %q (all: %v)", k, seen.Headers[k], v, seen.Headers)
			}
		}
		if !strings.HasPrefix(seen.Host, host) {
			t.Errorf("upstream saw Host %q, want the original %q", seen.Host, host)
		}
	})

	t.Run("a Host that is not the SNI name gets 421", func(t *testing.T) {
		resp := httpsGet(t, s.gatewayHTTPS, pool, host, "shop.example.com")
		if resp.status != http.StatusMisdirectedRequest || strings.Contains(string(resp.body), "example upstream") {
			t.Fatalf("got %d %q, want 421 without reaching the upstream", resp.status, resp.body)
		}
	})

	t.Run("unknown and missing SNI are refused at the handshake", func(t *testing.T) {
		for _, sni := range []string{"unknown.example.com", ""} {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.gatewayHTTPS,
				&tls.Config{ServerName: sni, InsecureSkipVerify: true}) //nolint:gosec // the handshake itself is under test
			if err == nil {
				conn.Close()
				t.Fatalf("SNI %q: handshake completed", sni)
			}
		}
	})
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func httpText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

type apiClient struct{ base, key string }

func (c apiClient) must(t *testing.T, method, path, body string, into any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
}

func publish(t *testing.T, mgmt string, r walkthrough.Record) {
	t.Helper()
	var path string
	var body map[string]any
	switch r.Type {
	case "TXT":
		path, body = "/set-txt", map[string]any{"host": r.Name + ".", "value": r.Value}
	case "A":
		path, body = "/add-a", map[string]any{"host": r.Name + ".", "addresses": []string{r.Value}}
	default:
		t.Fatalf("unexpected record %+v", r)
	}
	b, _ := json.Marshal(body)
	resp, err := http.Post(mgmt+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func waitActive(t *testing.T, api apiClient, host string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var got struct {
			Domain struct {
				Status    string `json:"status"`
				LastError string `json:"last_error"`
			} `json:"domain"`
		}
		api.must(t, http.MethodGet, "/v1/domains/"+host, "", &got)
		if got.Domain.Status == "DOMAIN_STATUS_ACTIVE" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ACTIVE: %s %s", host, got.Domain.Status, got.Domain.LastError)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type httpsResponse struct {
	status int
	body   []byte
}

// httpsGet sends GET / to the gateway with the given SNI name and Host header.
func httpsGet(t *testing.T, addr string, pool *x509.CertPool, sni, host string) httpsResponse {
	t.Helper()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: sni},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		},
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+sni+"/", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpsResponse{status: resp.StatusCode, body: b}
}
