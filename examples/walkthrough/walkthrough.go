// Package walkthrough is the first thing a new user does with a local Portico, as code:
// create a tenant, claim shop.example.com, publish the DNS records the API asks for
// into the local DNS server, wait until the domain is ACTIVE, fetch it over HTTPS through
// the gateway, then delete it and watch the handshake being refused. Every step prints
// what it does and the equivalent command, so `make demo` doubles as documentation; the
// end-to-end test runs the same steps against real processes.
package walkthrough

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Config says where the local system is.
type Config struct {
	// ControlAPI is the control API's JSON base URL, e.g. http://127.0.0.1:8080.
	ControlAPI string
	// AdminKey is the operator's admin key.
	AdminKey string
	// DNSManagement is pebble-challtestsrv's management URL, e.g. http://127.0.0.1:8055.
	DNSManagement string
	// GatewayHTTPS is the gateway's TLS address, e.g. 127.0.0.1:8443.
	GatewayHTTPS string
	// RootFile is the PEM file of the ACME CA's root (Pebble's roots/0).
	RootFile string
	// Hostname is the domain to claim (default shop.example.com).
	Hostname string
	// ActiveTimeout bounds the wait for ACTIVE (default 2 minutes).
	ActiveTimeout time.Duration
	// UseCurl runs the HTTPS request with curl when it is installed (the command the
	// README shows); otherwise, or when false, the same request is made from Go.
	UseCurl bool
}

// Result is what the walkthrough observed, for tests.
type Result struct {
	TenantID string
	APIKey   string
	// Records are the DNS records the API asked for.
	Records []Record
	// Answer is the body the upstream sent back through the gateway.
	Answer string
	// RefusedAfterDelete is the handshake error seen after the domain was deleted.
	RefusedAfterDelete error
}

// Record is one DNS record from the API.
type Record struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Run performs every step, printing to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	if cfg.Hostname == "" {
		cfg.Hostname = "shop.example.com"
	}
	if cfg.ActiveTimeout == 0 {
		cfg.ActiveTimeout = 2 * time.Minute
	}
	w := &walk{cfg: cfg, out: out, http: &http.Client{Timeout: 30 * time.Second}}
	var res Result

	w.step("1. Create a tenant (admin key)")
	var tenant struct {
		Tenant struct {
			ID string `json:"id"`
		} `json:"tenant"`
		APIKey string `json:"api_key"`
	}
	if err := w.call(ctx, http.MethodPost, "/v1/tenants", cfg.AdminKey, `{"display_name":"Demo shop"}`, &tenant); err != nil {
		return res, err
	}
	res.TenantID, res.APIKey = tenant.Tenant.ID, tenant.APIKey
	w.say("tenant %q created; its API key is shown once: %s", res.TenantID, res.APIKey)

	w.step("2. Claim " + cfg.Hostname + " (tenant key)")
	var created struct {
		Domain struct {
			Status     string   `json:"status"`
			DNSRecords []Record `json:"dns_records"`
		} `json:"domain"`
	}
	if err := w.call(ctx, http.MethodPost, "/v1/domains", res.APIKey, fmt.Sprintf(`{"hostname":%q}`, cfg.Hostname), &created); err != nil {
		return res, err
	}
	res.Records = created.Domain.DNSRecords
	w.say("status %s; the customer must publish:", created.Domain.Status)
	for _, r := range res.Records {
		w.say("    %-5s %s  %s", r.Type, r.Name, r.Value)
	}

	w.step("3. Publish those records in the local DNS server (pebble-challtestsrv)")
	for _, r := range res.Records {
		if err := w.publish(ctx, r); err != nil {
			return res, err
		}
	}

	w.step("4. Ask for verification now")
	if err := w.call(ctx, http.MethodPost, "/v1/domains/"+cfg.Hostname+":verify", res.APIKey, `{}`, nil); err != nil {
		return res, err
	}

	w.step("5. Wait for ACTIVE (ownership, pre-flight, ACME order through the gateway's port 80)")
	if err := w.waitActive(ctx, res.APIKey); err != nil {
		return res, err
	}

	w.step("6. HTTPS through the gateway, verified against the local CA's root")
	answer, err := w.fetch(ctx)
	if err != nil {
		return res, err
	}
	res.Answer = answer
	for _, line := range strings.Split(strings.TrimSpace(answer), "\n") {
		w.say("%s", line)
	}

	w.step("7. Delete the domain: it leaves the edge")
	if err := w.call(ctx, http.MethodDelete, "/v1/domains/"+cfg.Hostname, res.APIKey, "", nil); err != nil {
		return res, err
	}
	res.RefusedAfterDelete = w.waitRefused(ctx)
	if res.RefusedAfterDelete == nil {
		return res, errors.New("the gateway still completes handshakes for the deleted domain")
	}
	w.say("handshake refused, as it should be: %v", res.RefusedAfterDelete)
	w.step("Done.")
	return res, nil
}

type walk struct {
	cfg  Config
	out  io.Writer
	http *http.Client
}

func (w *walk) step(s string) { fmt.Fprintf(w.out, "\n==> %s\n", s) }
func (w *walk) say(format string, args ...any) {
	fmt.Fprintf(w.out, "    "+format+"\n", args...)
}

// call performs a JSON API request, printing the curl equivalent, and decodes the answer.
func (w *walk) call(ctx context.Context, method, path, key, body string, into any) error {
	url := w.cfg.ControlAPI + path
	shown := fmt.Sprintf("curl -sS -X %s %s -H 'Authorization: Bearer %s'", method, url, abbreviate(key))
	if body != "" {
		shown += fmt.Sprintf(" -d '%s'", body)
	}
	w.say("$ %s", shown)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, b, err)
		}
	}
	return nil
}

func abbreviate(key string) string {
	if len(key) > 12 {
		return key[:8] + "…"
	}
	return key
}

// publish puts one record into challtestsrv, clearing the name first (its add calls
// append, and records would pile up across runs).
func (w *walk) publish(ctx context.Context, r Record) error {
	host := r.Name + "."
	var clear, add string
	var body map[string]any
	switch r.Type {
	case "TXT":
		clear, add, body = "/clear-txt", "/set-txt", map[string]any{"host": host, "value": r.Value}
	case "A":
		clear, add, body = "/clear-a", "/add-a", map[string]any{"host": host, "addresses": []string{r.Value}}
	case "AAAA":
		clear, add, body = "/clear-aaaa", "/add-aaaa", map[string]any{"host": host, "addresses": []string{r.Value}}
	case "CNAME":
		clear, add, body = "/clear-cname", "/set-cname", map[string]any{"host": host, "target": r.Value + "."}
	default:
		return fmt.Errorf("record type %q is not publishable here", r.Type)
	}
	w.say("%-5s %s -> %s", r.Type, r.Name, r.Value)
	if err := w.manage(ctx, clear, map[string]any{"host": host}); err != nil {
		return err
	}
	return w.manage(ctx, add, body)
}

func (w *walk) manage(ctx context.Context, path string, body any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.DNSManagement+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("DNS management %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DNS management %s: %s", path, resp.Status)
	}
	return nil
}

func (w *walk) waitActive(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.ActiveTimeout)
	defer cancel()
	last := ""
	for {
		var got struct {
			Domain struct {
				Status    string `json:"status"`
				LastError string `json:"last_error"`
			} `json:"domain"`
		}
		if err := w.quietGet(ctx, "/v1/domains/"+w.cfg.Hostname, key, &got); err != nil {
			return err
		}
		now := got.Domain.Status
		if got.Domain.LastError != "" {
			now += " (" + got.Domain.LastError + ")"
		}
		if now != last {
			w.say("status %s", now)
			last = now
		}
		if got.Domain.Status == "DOMAIN_STATUS_ACTIVE" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ACTIVE after %v (last: %s)", w.cfg.Hostname, w.cfg.ActiveTimeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (w *walk) quietGet(ctx context.Context, path, key string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.cfg.ControlAPI+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, into)
}

// fetch makes the HTTPS request through the gateway: with curl when asked and installed,
// otherwise from Go with the same root, name and address.
func (w *walk) fetch(ctx context.Context) (string, error) {
	host, port, err := net.SplitHostPort(w.cfg.GatewayHTTPS)
	if err != nil {
		return "", err
	}
	url := fmt.Sprintf("https://%s:%s/", w.cfg.Hostname, port)
	w.say("$ curl --resolve %s:%s:%s --cacert %s %s", w.cfg.Hostname, port, host, w.cfg.RootFile, url)
	if w.cfg.UseCurl {
		if curl, err := exec.LookPath("curl"); err == nil {
			out, err := exec.CommandContext(ctx, curl, "-sS", "--fail", "--resolve", w.cfg.Hostname+":"+port+":"+host,
				"--cacert", w.cfg.RootFile, url).CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("curl: %v: %s", err, out)
			}
			return string(out), nil
		}
	}
	client, err := w.httpsClient()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s through the gateway: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s through the gateway: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

func (w *walk) rootPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(w.cfg.RootFile)
	if err != nil {
		return nil, fmt.Errorf("read the CA root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", w.cfg.RootFile)
	}
	return pool, nil
}

func (w *walk) httpsClient() (*http.Client, error) {
	pool, err := w.rootPool()
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: w.cfg.Hostname},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, w.cfg.GatewayHTTPS)
			},
			DisableKeepAlives: true,
		},
	}, nil
}

// waitRefused retries a bare handshake until the gateway refuses it (its cache is told
// by certstore's change stream; that takes well under a second) or 10 seconds pass.
func (w *walk) waitRefused(ctx context.Context) error {
	pool, err := w.rootPool()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", w.cfg.GatewayHTTPS,
			&tls.Config{RootCAs: pool, ServerName: w.cfg.Hostname})
		if err != nil {
			return err
		}
		conn.Close()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}
