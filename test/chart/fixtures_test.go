package chart_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"
)

var pki struct {
	once      sync.Once
	cert, key []byte
	err       error
}

// fixture is the content of a mounted file, by its name in the pod.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	switch name {
	case "tls.crt", "ca.crt":
		return testPKI(t).cert
	case "tls.key", "account-key.pem":
		return testPKI(t).key
	case "keyring":
		k := make([]byte, 32)
		rand.Read(k)
		return []byte("# test keyring\nk1:" + base64.StdEncoding.EncodeToString(k) + "\n")
	case "admin-key":
		return []byte(rand.Text() + rand.Text() + "\n")
	}
	t.Fatalf("the chart mounts %q, and the test has no fixture for it: add one", name)
	return nil
}

// testPKI is a self-signed ECDSA certificate with a SPIFFE URI SAN, standing in for the
// CA bundle and the component's certificate alike.
func testPKI(t *testing.T) *struct {
	once      sync.Once
	cert, key []byte
	err       error
} {
	t.Helper()
	pki.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			pki.err = err
			return
		}
		id, _ := url.Parse("spiffe://portico/test")
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "portico chart test"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			URIs:                  []*url.URL{id},
			DNSNames:              []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			pki.err = err
			return
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			pki.err = err
			return
		}
		pki.cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		pki.key = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	})
	if pki.err != nil {
		t.Fatal(pki.err)
	}
	return &pki
}
