package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portico-dev/portico/pkg/acmetest"
	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/redisstore"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/proctest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/notary/internal/dnstest"
)

// The integration tests run the real binaries on loopback: Pebble and
// pebble-challtestsrv (pkg/acmetest, Pebble behind a counting proxy), the certstore
// binary, one or more notary processes, and the real Redis, under a key prefix of
// their own. They play controlapi by writing domain records with redisstore and calling
// NotaryService.

// binaries builds the notary and certstore once per test binary.
func binaries(t *testing.T) (notary, certstore string) {
	t.Helper()
	return proctest.Build(t, "notary"), proctest.Build(t, "certstore")
}

// waitServing waits up to 30 seconds for p's gRPC health at addr to say SERVING.
func waitServing(t *testing.T, p *proctest.Process, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := proctest.WaitServing(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
}

// stack is one installation: Pebble behind a proxy, challtestsrv, certstore, Redis.
type stack struct {
	t          *testing.T
	env        *acmetest.Env
	proxy      *acmetest.Proxy
	rdb        *redis.Client
	prefix     string
	store      *redisstore.Store
	certstore  string
	caFile     string
	accountKey string
	// challengeAddr is where Pebble validates HTTP-01: the listener of the notary started
	// with serveChallenges.
	challengeAddr string
	notaryBin     string
	reads         certstorev1.CertReadServiceClient
	// resolver and delegationDNS are set with stackOptions.delegation: the stand-in
	// resolver everyone asks, and the address of the notary's built-in DNS server.
	resolver      *dnstest.Resolver
	delegationDNS string
}

// certstoreConn dials certstore for a test's own writes.
func (s *stack) certstoreConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.certstore, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// selfIssued makes a certificate for host (issuer and leaf in one) with its PKCS#8 key,
// as a previous holder might have stored.
func selfIssued(t *testing.T, host string) (chain [][]byte, key []byte, serial string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	key, _ = x509.MarshalPKCS8PrivateKey(k)
	return [][]byte{der}, key, sn.Text(16)
}

type stackOptions struct {
	nonceReject int
	// delegation puts a resolver stand-in (dnstest) in front of challtestsrv for Pebble
	// and the notary, delegating delegationZone to the notary's built-in DNS server.
	delegation bool
}

// delegationZone is the zone wildcard domains delegate into in these tests.
const delegationZone = "acme.portico.test"

// freeDNSAddr is a loopback address free for both UDP and TCP a moment ago.
func freeDNSAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port for UDP and TCP")
	return ""
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	notaryBin, certstoreBin := binaries(t)
	rdb, prefix := redistest.New(t)
	challengeAddr := proctest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(challengeAddr)
	var httpPort int
	fmt.Sscan(port, &httpPort)
	opts := acmetest.Options{HTTPPort: httpPort, NonceReject: o.nonceReject}
	var resolver *dnstest.Resolver
	var delegationDNS string
	if o.delegation {
		delegationDNS = freeDNSAddr(t)
		opts.FrontDNS = func(t testing.TB, challtestsrv string) string {
			resolver = dnstest.Start(t, challtestsrv)
			resolver.Delegate(delegationZone, delegationDNS)
			return resolver.Addr
		}
	}
	env := acmetest.Start(t, opts)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "pebble-listener-ca.pem")
	if err := os.WriteFile(caFile, env.ListenerCAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	csAddr := proctest.FreeAddr(t)
	cs := proctest.Start(t, "certstore", certstoreBin, nil, "-listen", csAddr, "-admin-listen", proctest.FreeAddr(t),
		"-redis-addr", redistest.Addr(), "-redis-key-prefix", prefix,
		"-kek-file", filepath.Join(dir, "kek"), "-kek-create", "-hostname-extra-tlds", "test", "-log-level", "warn")
	waitServing(t, cs, csAddr)
	conn, err := grpc.NewClient(csAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &stack{
		t: t, env: env, proxy: env.StartProxy(t), rdb: rdb, prefix: prefix, store: redisstore.New(rdb, prefix),
		certstore: csAddr, caFile: caFile, accountKey: filepath.Join(dir, "account.pem"),
		challengeAddr: challengeAddr, notaryBin: notaryBin, reads: certstorev1.NewCertReadServiceClient(conn),
		resolver: resolver, delegationDNS: delegationDNS,
	}
}

// notary is a running notary process and its API.
type notary struct {
	*proctest.Process
	api notaryv1.NotaryServiceClient
}

// startNotary runs a notary process; the first one started with serveChallenges takes
// the address Pebble validates on.
func (s *stack) startNotary(name string, serveChallenges bool, extra ...string) *notary {
	t := s.t
	t.Helper()
	listen := proctest.FreeAddr(t)
	httpListen := proctest.FreeAddr(t)
	if serveChallenges {
		httpListen = s.challengeAddr
	}
	args := []string{
		"-listen", listen, "-admin-listen", proctest.FreeAddr(t), "-http-listen", httpListen,
		"-certstore-addr", s.certstore, "-redis-addr", redistest.Addr(), "-redis-key-prefix", s.prefix,
		"-hostname-extra-tlds", "test",
		"-acme-directory", s.proxy.DirectoryURL, "-acme-ca-file", s.caFile, "-acme-profile", "default",
		"-acme-account-key-file", s.accountKey,
		"-dns-timeout", "500ms", "-edge-addresses", "127.0.0.1", "-caa-identities", "pebble.test",
		"-poll-interval", "200ms", "-renewal-scan-interval", "1s", "-lease-ttl", "3s", "-in-flight-timeout", "3s",
		"-verify-interval", "1s", "-transient-retry", "1s", "-log-level", "info",
	}
	if s.resolver == nil {
		args = append(args, "-dns-resolvers", s.env.DNSAddr)
	} else {
		// The notary serving challenges also answers the resolver's questions about the
		// delegation zone; others run built-in servers nobody asks (all read one store).
		dnsListen := freeDNSAddr(t)
		if serveChallenges {
			dnsListen = s.delegationDNS
		}
		_, port, _ := net.SplitHostPort(s.resolver.Addr)
		args = append(args, "-dns-resolvers", s.resolver.Addr, "-dns-authoritative-port", port,
			"-delegation-zone", delegationZone, "-delegation-nameservers", "ns1.portico.test",
			"-delegation-dns-listen", dnsListen)
	}
	p := proctest.Start(t, name, s.notaryBin, nil, append(args, extra...)...)
	waitServing(t, p, listen)
	conn, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notary{Process: p, api: notaryv1.NewNotaryServiceClient(conn)}
}

// tenantToken is the verification token of tenant "acme" for a registered domain.
func tenantToken(registered string) string { return "portico-verify-acme-" + registered }

// createDomain plays controlapi: a PENDING_VERIFICATION record due now.
func (s *stack) createDomain(host, registered string) domains.Domain {
	s.t.Helper()
	now := time.Now()
	d, err := s.store.CreateDomain(s.t.Context(), domains.Domain{
		Hostname: host, TenantID: "acme", Kind: domains.KindExact, RegisteredDomain: registered,
		Status: domains.StatusPendingVerification, VerificationToken: tenantToken(registered),
		RedirectHTTPS: true, NextAttemptAt: now, VerifyDeadline: now.Add(7 * 24 * time.Hour), CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// publishTXT publishes the ownership record of registered.
func (s *stack) publishTXT(registered string) {
	s.env.SetTXT(s.t, "_verify."+registered, tenantToken(registered))
}

// waitFor polls the record until cond holds.
func (s *stack) waitFor(host string, within time.Duration, what string, cond func(d domains.Domain) bool) domains.Domain {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var d domains.Domain
	var err error
	for {
		d, err = s.store.GetDomain(s.t.Context(), host)
		if err == nil && cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not %s within %v; last record %+v, %v", host, what, within, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isActive(d domains.Domain) bool { return d.Status == domains.StatusActive }

// served reads host's certificate and key back through certstore and checks that the
// chain verifies against Pebble's current root and that the key matches the leaf.
func (s *stack) served(host string) *x509.Certificate {
	s.t.Helper()
	resp, err := s.reads.Lookup(s.t.Context(), &certstorev1.LookupRequest{Hostname: host})
	if err != nil {
		s.t.Fatalf("Lookup(%s): %v", host, err)
	}
	chain := resp.GetCertificateChain()
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		s.t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			s.t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.env.RootPool(s.t), Intermediates: inter, DNSName: host}); err != nil {
		s.t.Fatalf("%s: the stored chain does not verify against Pebble's root: %v", host, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(resp.GetPrivateKey())
	if err != nil {
		s.t.Fatalf("%s: stored key: %v", host, err)
	}
	pub, _ := key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if pub == nil || !pub.Equal(leaf.PublicKey) {
		s.t.Fatalf("%s: the stored key does not match the stored leaf", host)
	}
	if r := resp.GetRoute(); r.GetTenantId() != "acme" || !r.GetRedirectHttps() {
		s.t.Fatalf("%s: route %+v, want tenant acme with redirect", host, r)
	}
	return leaf
}

// challengeKeys counts the HTTP-01 answers currently stored.
func (s *stack) challengeKeys() int {
	keys, _ := s.rdb.Keys(s.t.Context(), s.prefix+":notary:challenge:*").Result()
	return len(keys)
}
