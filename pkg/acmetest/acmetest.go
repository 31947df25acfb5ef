// Package acmetest starts a local ACME CA (Pebble) and a scriptable DNS server
// (pebble-challtestsrv) as processes on free loopback ports for one test, and drives
// their management APIs: DNS records (A, AAAA, CNAME, TXT, CAA, SERVFAIL), Pebble's
// current root, and forced ARI renewal windows.
//
// The binaries are the pinned ones `make tools` installs into the repository's bin/
// (then PATH is searched); without them Start fails and names `make tools`. It runs them
// with the recipe of ../shared/LOCAL-ACME.md: no IPv6 answers, DoH and challtestsrv's
// own HTTP-01/TLS-ALPN listeners off, PEBBLE_VA_NOSLEEP=1 and PEBBLE_AUTHZREUSE=0 (every
// order exercises its challenge), every order naming a defined profile, and a
// certificate for Pebble's API generated per test. Only the processes it started are
// stopped, at the test's cleanup.
//
//	env := acmetest.Start(t, acmetest.Options{HTTPPort: challengePort})
//	env.SetTXT(t, "_verify.example.com", token)
//	client := lego config with env.DirectoryURL and env.HTTPClient()
//	root := env.Root(t) // after each start: Pebble makes a new root every time
package acmetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultChaos, as Options.NonceReject, leaves Pebble's own default: it rejects 5% of
// good nonces as bad, which a client must retry.
const DefaultChaos = -1

// Profile is a Pebble certificate profile.
type Profile struct {
	Description string `json:"description"`
	// ValidityPeriod in seconds.
	ValidityPeriod uint64 `json:"validityPeriod"`
}

// DefaultProfiles are defined when Options.Profiles is nil: "default" (90 days) and
// "shortlived" (5 minutes, for renewal tests).
func DefaultProfiles() map[string]Profile {
	return map[string]Profile{
		"default":    {Description: "90 days", ValidityPeriod: 90 * 24 * 3600},
		"shortlived": {Description: "5 minutes", ValidityPeriod: 300},
	}
}

// Options configure Pebble.
type Options struct {
	// HTTPPort is where Pebble sends HTTP-01 validation requests (on the address the DNS
	// server gives, 127.0.0.1 by default): the notary's challenge listener, or a gateway.
	// Zero leaves Pebble's default, 5002.
	HTTPPort int
	// NonceReject is the percentage of good nonces Pebble rejects (PEBBLE_WFE_NONCEREJECT);
	// DefaultChaos keeps Pebble's default. The zero value turns the chaos off.
	NonceReject int
	// Profiles replaces DefaultProfiles when non-nil.
	Profiles map[string]Profile
	// OrderRetryAfter and AuthzRetryAfter are the Retry-After seconds Pebble sends while
	// an order or authorization is processing (default 1).
	OrderRetryAfter, AuthzRetryAfter int
	// FrontDNS, when set, is called with challtestsrv's DNS address once it runs, and
	// returns the DNS server Pebble asks instead: a resolver stand-in in front of
	// challtestsrv that also follows CNAMEs into other servers (the notary's delegation
	// zone). Env.DNSAddr stays challtestsrv's.
	FrontDNS func(t testing.TB, challtestsrv string) string
}

// Env is a running Pebble and challtestsrv.
type Env struct {
	// DirectoryURL is Pebble's ACME directory.
	DirectoryURL string
	// ManagementURL is Pebble's management API (roots, set-renewal-info).
	ManagementURL string
	// DNSAddr is challtestsrv's DNS server (UDP and TCP), host:port.
	DNSAddr string
	// ChallSrvURL is challtestsrv's management API.
	ChallSrvURL string
	// Pool trusts Pebble's API listeners (not the certificates Pebble issues: see Root).
	Pool *x509.CertPool

	listenerCA    *x509.Certificate
	listenerCAKey *ecdsa.PrivateKey
}

// Start runs challtestsrv and Pebble for t and stops them at its cleanup.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	pebbleBin := findBinary(t, "pebble")
	challBin := findBinary(t, "pebble-challtestsrv")
	dir := t.TempDir()

	dnsAddr := freeAddr(t, true)
	challMgmt := freeAddr(t, false)
	startProcess(t, dir, "pebble-challtestsrv", challBin, nil,
		"-dnsserver", dnsAddr, "-management", challMgmt,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	waitTCP(t, challMgmt)

	ca, caKey := newListenerCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	certFile, keyFile := filepath.Join(dir, "pebble-cert.pem"), filepath.Join(dir, "pebble-key.pem")
	certDER, leafKey := issueListenerCert(t, ca, caKey)
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	writePEM(t, certFile, "CERTIFICATE", certDER)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	listen, mgmt := freeAddr(t, false), freeAddr(t, false)
	profiles := opts.Profiles
	if profiles == nil {
		profiles = DefaultProfiles()
	}
	httpPort := opts.HTTPPort
	if httpPort == 0 {
		httpPort = 5002
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": mgmt,
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                httpPort,
		"tlsPort":                 freePort(t),
		"keyAlgorithm":            "ecdsa",
		"profiles":                profiles,
		"retryAfter":              map[string]int{"authz": max(opts.AuthzRetryAfter, 1), "order": max(opts.OrderRetryAfter, 1)},
	}}
	cfgFile := filepath.Join(dir, "pebble-config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0"}
	if opts.NonceReject != DefaultChaos {
		env = append(env, "PEBBLE_WFE_NONCEREJECT="+strconv.Itoa(opts.NonceReject))
	}
	pebbleDNS := dnsAddr
	if opts.FrontDNS != nil {
		pebbleDNS = opts.FrontDNS(t, dnsAddr)
	}
	startProcess(t, dir, "pebble", pebbleBin, env, "-config", cfgFile, "-dnsserver", pebbleDNS)

	e := &Env{
		DirectoryURL:  "https://" + listen + "/dir",
		ManagementURL: "https://" + mgmt,
		DNSAddr:       dnsAddr,
		ChallSrvURL:   "http://" + challMgmt,
		Pool:          pool,
		listenerCA:    ca,
		listenerCAKey: caKey,
	}
	e.waitDirectory(t)
	return e
}

// ListenerCAPEM is the CA of Pebble's API listeners as PEM, for processes that take a
// CA file (the notary's -acme-ca-file).
func (e *Env) ListenerCAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.listenerCA.Raw})
}

// HTTPClient is a client that trusts Pebble's API listeners.
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Pool, MinVersion: tls.VersionTLS12}},
	}
}

// RootPEM fetches Pebble's current root (roots/0) as PEM; Pebble makes a new one at
// every start.
func (e *Env) RootPEM(t testing.TB) []byte {
	t.Helper()
	return e.get(t, e.ManagementURL+"/roots/0")
}

// Root fetches Pebble's current root certificate.
func (e *Env) Root(t testing.TB) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(e.RootPEM(t))
	if block == nil {
		t.Fatal("Pebble's roots/0 is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RootPool is a pool holding Pebble's current root, to verify issued chains against.
func (e *Env) RootPool(t testing.TB) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(e.Root(t))
	return p
}

// SetRenewalInfo makes Pebble's ARI suggest the window [start, end] for leaf.
func (e *Env) SetRenewalInfo(t testing.TB, leaf *x509.Certificate, start, end time.Time) {
	t.Helper()
	ari, _ := json.Marshal(map[string]any{"suggestedWindow": map[string]string{
		"start": start.UTC().Format(time.RFC3339), "end": end.UTC().Format(time.RFC3339),
	}})
	body := map[string]string{
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
		"ariResponse": string(ari),
	}
	e.post(t, e.ManagementURL+"/set-renewal-info/", body)
}

// AddA adds A records for host (challtestsrv answers 127.0.0.1 for hosts without any).
func (e *Env) AddA(t testing.TB, host string, addrs ...string) {
	t.Helper()
	e.chall(t, "/add-a", map[string]any{"host": host, "addresses": addrs})
}

// ClearA removes host's A records (back to the 127.0.0.1 default).
func (e *Env) ClearA(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/clear-a", map[string]any{"host": host})
}

// AddAAAA adds AAAA records for host.
func (e *Env) AddAAAA(t testing.TB, host string, addrs ...string) {
	t.Helper()
	e.chall(t, "/add-aaaa", map[string]any{"host": host, "addresses": addrs})
}

// ClearAAAA removes host's AAAA records.
func (e *Env) ClearAAAA(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/clear-aaaa", map[string]any{"host": host})
}

// SetCNAME makes host an alias of target.
func (e *Env) SetCNAME(t testing.TB, host, target string) {
	t.Helper()
	e.chall(t, "/set-cname", map[string]any{"host": host, "target": target})
}

// ClearCNAME removes host's CNAME.
func (e *Env) ClearCNAME(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/clear-cname", map[string]any{"host": host})
}

// SetTXT replaces host's TXT records with one holding value (values longer than 255
// octets are sent as several strings of one record).
func (e *Env) SetTXT(t testing.TB, host, value string) {
	t.Helper()
	e.ClearTXT(t, host)
	e.AddTXT(t, host, value)
}

// AddTXT adds a TXT record to host's (challtestsrv appends).
func (e *Env) AddTXT(t testing.TB, host, value string) {
	t.Helper()
	e.chall(t, "/set-txt", map[string]any{"host": host, "value": value})
}

// ClearTXT removes host's TXT records.
func (e *Env) ClearTXT(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/clear-txt", map[string]any{"host": host})
}

// CAA is one CAA property.
type CAA struct {
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

// AddCAA sets host's CAA records.
func (e *Env) AddCAA(t testing.TB, host string, policies ...CAA) {
	t.Helper()
	e.chall(t, "/add-caa", map[string]any{"host": host, "policies": policies})
}

// ClearCAA removes host's CAA records.
func (e *Env) ClearCAA(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/clear-caa", map[string]any{"host": host})
}

// SetServFail makes every query for host answer SERVFAIL.
func (e *Env) SetServFail(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/set-servfail", map[string]any{"host": host})
}

// ClearServFail undoes SetServFail.
func (e *Env) ClearServFail(t testing.TB, host string) {
	t.Helper()
	e.chall(t, "/clear-servfail", map[string]any{"host": host})
}

func (e *Env) chall(t testing.TB, path string, body any) {
	t.Helper()
	e.post(t, e.ChallSrvURL+path, body)
}

func (e *Env) post(t testing.TB, url string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", url, resp.Status, msg)
	}
}

func (e *Env) get(t testing.TB, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b
}

func (e *Env) waitDirectory(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	client := e.HTTPClient()
	for {
		resp, err := client.Get(e.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pebble's directory %s did not answer within 20s: %v", e.DirectoryURL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// repoRoot is the repository's top directory (this file is pkg/acmetest/acmetest.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func findBinary(t testing.TB, name string) string {
	t.Helper()
	if p := filepath.Join(repoRoot(), "bin", name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found in %s nor on PATH: run `make tools` (it installs the pinned Pebble into ./bin)", name, filepath.Join(repoRoot(), "bin"))
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// startProcess runs a binary with a log file, killed (with its process group) at
// cleanup; the log's tail is printed when the test failed.
func startProcess(t testing.TB, dir, name, bin string, env []string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("--- log of %s ---\n%s", name, strings.Join(lines, "\n"))
		}
	})
}

func waitTCP(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept connections within 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback host:port free a moment ago (for TCP, and for UDP too when
// udp is set, as the DNS server needs both).
func freeAddr(t testing.TB, udp bool) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if !udp {
			l.Close()
			return addr
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return ""
}

func freePort(t testing.TB) int {
	_, p, _ := net.SplitHostPort(freeAddr(t, false))
	n, _ := strconv.Atoi(p)
	return n
}

// newListenerCA makes a throwaway CA for Pebble's own HTTPS listeners (and proxies in
// front of them).
func newListenerCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acmetest Pebble listener CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	return ca, caKey
}

// issueListenerCert issues a certificate for 127.0.0.1 and localhost.
func issueListenerCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", path, err))
	}
}
