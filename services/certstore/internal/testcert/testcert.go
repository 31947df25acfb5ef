// Package testcert issues throwaway certificate chains and keys for certstore's tests and
// benchmarks: a CA, and leaves for given names with a fresh (or a shared) key.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// CA is a test issuer.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// NewCA makes a CA valid for ten years.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := ECDSAKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "certstore test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, key: key}
}

// ECDSAKey is a fresh P-256 key.
func ECDSAKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// RSAKey is a fresh 2048-bit RSA key.
func RSAKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Leaf describes a leaf to issue. Zero times mean valid from an hour ago for 90 days;
// a nil Key means a fresh P-256 key.
type Leaf struct {
	DNSNames  []string
	NotBefore time.Time
	NotAfter  time.Time
	Key       crypto.Signer
}

// Issued is a chain (leaf, CA) with the leaf's key.
type Issued struct {
	Chain [][]byte
	// Key is the leaf's private key, PKCS#8 DER.
	Key  []byte
	Leaf *x509.Certificate
}

// Issue signs a leaf.
func (ca *CA) Issue(t testing.TB, l Leaf) Issued {
	t.Helper()
	if l.Key == nil {
		l.Key = ECDSAKey(t)
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = l.NotBefore.Add(90 * 24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: l.DNSNames[0]},
		DNSNames:     l.DNSNames,
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, l.Key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return Issued{Chain: [][]byte{der, ca.Cert.Raw}, Key: keyDER, Leaf: leaf}
}
