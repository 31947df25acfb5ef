package mtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/mtls/mtlstest"
)

func TestIdentityFromCertificate(t *testing.T) {
	ca := mtlstest.NewCA(t)
	f := ca.Issue("gateway")
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if id, ok := mtls.IdentityOf(leaf, mtls.DefaultTrustDomain); !ok || id != "gateway" {
		t.Fatalf("identity = %q, %v", id, ok)
	}
	if _, ok := mtls.IdentityOf(leaf, "other-domain"); ok {
		t.Fatal("identity of another trust domain accepted")
	}
}

func TestFilesCheck(t *testing.T) {
	if err := (mtls.Files{Cert: "a"}).Check(); err == nil {
		t.Fatal("a partial set must be an error")
	}
	if err := (mtls.Files{}).Check(); err != nil {
		t.Fatalf("an empty set means plaintext: %v", err)
	}
}

// TestServerPicksUpRotatedCertificate replaces the files in place, as cert-manager does,
// and expects the server configuration to hand out the new certificate.
func TestServerPicksUpRotatedCertificate(t *testing.T) {
	t.Cleanup(mtls.SetReloadInterval(0))
	ca := mtlstest.NewCA(t)
	f := ca.Issue("certstore")
	cfg, err := mtls.ServerConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	rotated := ca.Issue("certstore-next")
	for _, p := range [][2]string{{rotated.Cert, f.Cert}, {rotated.Key, f.Key}} {
		b, _ := os.ReadFile(p[0])
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute)
		os.Chtimes(p[1], later, later)
	}
	second, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Certificate[0]) == string(second.Certificate[0]) {
		t.Fatal("certificate not reloaded after the files changed")
	}
}
