// Package testpki issues throwaway certificates for the gateway's tests: a CA and leaves
// for given hostnames, in the forms certstore deals in (DER chain leaf first, PKCS#8 key)
// and ready to use (*tls.Certificate with Leaf set).
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	DER  []byte
	key  crypto.Signer
	// Pool trusts only this CA.
	Pool *x509.CertPool
}

// NewCA makes a CA valid from an hour ago for a year.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portico gateway test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, DER: der, key: key, Pool: pool}
}

// Leaf is an issued certificate.
type Leaf struct {
	// Chain is DER, leaf first, then the CA.
	Chain [][]byte
	// Key is the private key, PKCS#8 DER.
	Key []byte
	// NotAfter is the leaf's expiry.
	NotAfter time.Time
	// Cert is the same, parsed, with Leaf set.
	Cert *tls.Certificate
}

// KeyType chooses the leaf's key.
type KeyType int

const (
	// ECDSAP256 is the default.
	ECDSAP256 KeyType = iota
	// RSA2048 is the other key type certstore stores.
	RSA2048
)

// Options shape a leaf; the zero value is an ECDSA P-256 leaf valid from an hour ago for
// 90 days.
type Options struct {
	Key       KeyType
	NotBefore time.Time
	NotAfter  time.Time
}

// Issue makes an ECDSA P-256 leaf for names (DNS SANs; `*.example.com` allowed).
func (ca *CA) Issue(t testing.TB, names ...string) Leaf {
	t.Helper()
	return ca.IssueWith(t, Options{}, names...)
}

// IssueWith makes a leaf shaped by o.
func (ca *CA) IssueWith(t testing.TB, o Options, names ...string) Leaf {
	t.Helper()
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	var key crypto.Signer
	var err error
	switch o.Key {
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	chain := [][]byte{der, ca.DER}
	return Leaf{
		Chain:    chain,
		Key:      keyDER,
		NotAfter: leaf.NotAfter,
		Cert:     &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf},
	}
}
