package acmeclient_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/acmetest"
	"github.com/portico-dev/portico/services/notary/internal/acmeclient"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/memchallenges"
	"github.com/portico-dev/portico/services/notary/internal/lifecycle"
)

type ca struct {
	env   *acmetest.Env
	proxy *acmetest.Proxy
	store challenges.Store
	keys  acmeclient.FileKeyStore
}

// startCA runs Pebble (default chaos on) with its HTTP-01 port pointing at a challenge
// handler serving from store, the way the notary's listener does.
func startCA(t *testing.T) *ca {
	t.Helper()
	acmeclient.RouteLegoLogs(zap.NewNop())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := memchallenges.New()
	srv := &http.Server{Handler: &challenges.Handler{Store: store, Log: zap.NewNop()}, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	env := acmetest.Start(t, acmetest.Options{HTTPPort: lis.Addr().(*net.TCPAddr).Port, NonceReject: acmetest.DefaultChaos})
	return &ca{env: env, proxy: env.StartProxy(t), store: store, keys: acmeclient.FileKeyStore{Path: filepath.Join(t.TempDir(), "account.pem")}}
}

func (c *ca) client(t *testing.T, keyType string) *acmeclient.Client {
	t.Helper()
	cl, err := acmeclient.New(acmeclient.Config{
		DirectoryURL: c.proxy.DirectoryURL, Profile: "default", KeyType: keyType,
		AccountKey: c.keys, HTTPClient: c.env.HTTPClient(),
		HTTP01: &challenges.Provider{Store: c.store, TTL: time.Minute},
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func verify(t *testing.T, c *ca, got acmeclient.Certificate, host string) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, der := range got.Chain[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	if _, err := got.Leaf.Verify(x509.VerifyOptions{Roots: c.env.RootPool(t), Intermediates: inter, DNSName: host}); err != nil {
		t.Fatalf("the chain does not verify against Pebble's root for %s: %v", host, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(got.Key)
	if err != nil {
		t.Fatalf("key is not PKCS#8: %v", err)
	}
	type pub interface{ Equal(x crypto.PublicKey) bool }
	if !key.(crypto.Signer).Public().(pub).Equal(got.Leaf.PublicKey) {
		t.Fatal("the key does not match the leaf")
	}
}

func TestObtainRenewAndRenewalInfo(t *testing.T) {
	t.Parallel()
	c := startCA(t)
	cl := c.client(t, "")
	first, err := cl.Obtain(t.Context(), []string{"shop.example.com"}, nil)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	verify(t, c, first, "shop.example.com")
	if k, isEC := first.Leaf.PublicKey.(*ecdsa.PublicKey); !isEC || k.Curve.Params().Name != "P-256" {
		t.Fatalf("default key is %T, want ECDSA P-256", first.Leaf.PublicKey)
	}

	w, _, err := cl.RenewalInfo(t.Context(), first.Leaf)
	if err != nil || !w.Start.After(time.Now()) || !w.End.After(w.Start) {
		t.Fatalf("RenewalInfo of a fresh certificate = %+v, %v; want a future window", w, err)
	}
	past := time.Now().Add(-2 * time.Hour)
	c.env.SetRenewalInfo(t, first.Leaf, past, past.Add(time.Hour))
	w, _, err = cl.RenewalInfo(t.Context(), first.Leaf)
	if err != nil || !w.End.Before(time.Now()) {
		t.Fatalf("RenewalInfo after set-renewal-info = %+v, %v; want the past window", w, err)
	}

	renewed, err := cl.Obtain(t.Context(), []string{"shop.example.com"}, first.Leaf)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	verify(t, c, renewed, "shop.example.com")
	if renewed.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 || string(renewed.Key) == string(first.Key) {
		t.Fatal("the renewal reused the certificate or its key")
	}
	certID, _ := api.MakeARICertID(first.Leaf)
	if rep := c.proxy.Replaces(); len(rep) != 2 || rep[0] != "" || rep[1] != certID {
		t.Fatalf("orders' replaces = %q, want [\"\" %q]", rep, certID)
	}
	if c.proxy.Orders() != 2 {
		t.Fatalf("%d orders, want 2", c.proxy.Orders())
	}
}

func TestRSAKeyWhenConfigured(t *testing.T) {
	t.Parallel()
	c := startCA(t)
	got, err := c.client(t, "rsa2048").Obtain(t.Context(), []string{"rsa.example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, c, got, "rsa.example.com")
	if k, isRSA := got.Leaf.PublicKey.(*rsa.PublicKey); !isRSA || k.N.BitLen() != 2048 {
		t.Fatalf("key is %T, want RSA-2048", got.Leaf.PublicKey)
	}
}

func TestRateLimitCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	c := startCA(t)
	cl := c.client(t, "")
	date := time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
	c.proxy.RateLimitNext("120", date)
	tests := []struct {
		name     string
		min, max time.Duration
	}{
		{"seconds", 120 * time.Second, 120 * time.Second},
		{"HTTP date", 2*time.Hour - time.Minute, 2 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.Obtain(t.Context(), []string{"limited.example.com"}, nil)
			out := acmeclient.Classify(err)
			if out.Class != lifecycle.ClassRateLimited || out.RetryAfter < tc.min || out.RetryAfter > tc.max {
				t.Fatalf("Classify(%v) = %+v, want rate limited within [%v, %v]", err, out, tc.min, tc.max)
			}
		})
	}
	if c.proxy.Orders() != 0 {
		t.Fatalf("%d orders placed while rate limited", c.proxy.Orders())
	}
}

func TestAccountKeyIsSharedAndCreatedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "account.pem")
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := acmeclient.FileKeyStore{Path: path}.LoadOrCreate(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			der, _ := x509.MarshalPKIXPublicKey(k.Public())
			keys[i] = string(der)
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Fatal("concurrent replicas ended with different account keys")
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("account key file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
}
