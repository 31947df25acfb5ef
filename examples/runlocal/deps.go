package main

import (
	"bufio"
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
	"strings"
	"time"
)

// startRedis uses the Redis that answers at o.Redis, or starts redis-server there
// (installing Debian's package first when it is missing).
func startRedis(ctx context.Context, sup *supervisor, o options) error {
	if pingRedis(o.Redis) == nil {
		fmt.Printf("    using the Redis already answering at %s (keys under %q)\n", o.Redis, o.KeyPrefix)
		return nil
	}
	server, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Println("    redis-server is not installed; installing Debian's package redis-server")
		if err := aptInstall(ctx, "redis-server"); err != nil {
			return err
		}
		if server, err = exec.LookPath("redis-server"); err != nil {
			return fmt.Errorf("redis-server still not found after installing it: %w", err)
		}
		// The package may have started its own service on the default port.
		if pingRedis(o.Redis) == nil {
			fmt.Printf("    using the Redis the package started at %s\n", o.Redis)
			return nil
		}
	}
	host, port, err := net.SplitHostPort(o.Redis)
	if err != nil {
		return err
	}
	data := filepath.Join(o.Dir, "redis")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	p, err := sup.start("redis", server, nil, "--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", data)
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 10*time.Second, func(context.Context) error { return pingRedis(o.Redis) })
}

func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("%s answered %q to PING", addr, strings.TrimSpace(line))
	}
	return nil
}

func aptInstall(ctx context.Context, pkg string) error {
	args := []string{"apt-get", "install", "-y", "-q", pkg}
	if os.Geteuid() != 0 {
		args = append([]string{"sudo"}, args...)
	}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	if err := run(args...); err == nil {
		return nil
	}
	update := []string{"apt-get", "update", "-q"}
	if os.Geteuid() != 0 {
		update = append([]string{"sudo"}, update...)
	}
	if err := run(update...); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	if err := run(args...); err != nil {
		return fmt.Errorf("install %s: %w", pkg, err)
	}
	return nil
}

// acmeFiles are what the local CA leaves in the run directory.
type acmeFiles struct {
	// apiCAFile signs Pebble's own HTTPS listener (the notary trusts it for the API).
	apiCAFile string
	// rootFile is the root of the certificates Pebble issues (clients trust it).
	rootFile string
}

// startACME starts pebble-challtestsrv and Pebble as ../shared/LOCAL-ACME.md describes:
// no IPv6 answers, DoH and challtestsrv's own challenge servers off, HTTP-01 validated on
// the gateway's plain-HTTP port, every order naming a defined profile.
func startACME(ctx context.Context, sup *supervisor, o options) (acmeFiles, error) {
	dnsHost, _, _ := net.SplitHostPort(o.GatewayHTTP)
	chall, err := sup.start("dns", o.bin("pebble-challtestsrv"), nil,
		"-dnsserver", o.DNS, "-management", o.DNSManagement,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", dnsHost, "-defaultIPv6", "")
	if err != nil {
		return acmeFiles{}, err
	}
	if err := waitTCP(ctx, chall, o.DNSManagement, 10*time.Second); err != nil {
		return acmeFiles{}, err
	}

	dir := filepath.Join(o.Dir, "pebble")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return acmeFiles{}, err
	}
	files := acmeFiles{apiCAFile: filepath.Join(dir, "api-ca.pem"), rootFile: filepath.Join(o.Dir, "pebble-root.pem")}
	certFile, keyFile := filepath.Join(dir, "api-cert.pem"), filepath.Join(dir, "api-key.pem")
	if err := writeAPICert(files.apiCAFile, certFile, keyFile); err != nil {
		return acmeFiles{}, err
	}
	_, httpPort, _ := net.SplitHostPort(o.GatewayHTTP)
	var port int
	fmt.Sscan(httpPort, &port)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           o.ACME,
		"managementListenAddress": o.ACMEManagement,
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                port,
		"tlsPort":                 5001,
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{
			"default": map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600},
		},
	}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		return acmeFiles{}, err
	}
	pebble, err := sup.start("pebble", o.bin("pebble"), []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", cfgFile, "-dnsserver", o.DNS)
	if err != nil {
		return acmeFiles{}, err
	}
	client, err := trusting(files.apiCAFile)
	if err != nil {
		return acmeFiles{}, err
	}
	var root []byte
	err = waitFor(ctx, pebble, 20*time.Second, func(ctx context.Context) error {
		// Pebble makes a new root at every start: fetch it after this one.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+o.ACMEManagement+"/roots/0", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("roots/0: %s", resp.Status)
		}
		root, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		return acmeFiles{}, err
	}
	if err := os.WriteFile(files.rootFile, root, 0o644); err != nil {
		return acmeFiles{}, err
	}
	fmt.Printf("    dns        ready (%s)\n    pebble     ready (https://%s/dir)\n", o.DNS, o.ACME)
	return files, nil
}

func trusting(caFile string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// writeAPICert makes a CA and a certificate for 127.0.0.1 and localhost for Pebble's
// HTTPS listeners, once per run directory.
func writeAPICert(caFile, certFile, keyFile string) error {
	if _, err := os.Stat(certFile); err == nil {
		return nil
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Portico local ACME API CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}
