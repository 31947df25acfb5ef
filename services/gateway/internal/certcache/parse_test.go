package certcache_test

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

func TestParseCertificate(t *testing.T) {
	ca := testpki.NewCA(t)
	ec := ca.Issue(t, "a.example.com")
	other := ca.Issue(t, "b.example.com")
	rsaLeaf := ca.IssueWith(t, testpki.Options{Key: testpki.RSA2048}, "r.example.com")
	tests := []struct {
		name    string
		chain   [][]byte
		key     []byte
		wantErr string
	}{
		{name: "ecdsa chain and key", chain: ec.Chain, key: ec.Key},
		{name: "rsa chain and key", chain: rsaLeaf.Chain, key: rsaLeaf.Key},
		{name: "leaf alone", chain: ec.Chain[:1], key: ec.Key},
		{name: "empty chain", chain: nil, key: ec.Key, wantErr: "empty certificate chain"},
		{name: "garbage leaf", chain: [][]byte{[]byte("not DER")}, key: ec.Key, wantErr: "parse leaf"},
		{name: "garbage key", chain: ec.Chain, key: []byte("not PKCS#8"), wantErr: "parse private key"},
		{name: "key of another certificate", chain: ec.Chain, key: other.Key, wantErr: "does not match"},
		{name: "rsa key for an ecdsa leaf", chain: ec.Chain, key: rsaLeaf.Key, wantErr: "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, leaf, err := certcache.ParseCertificate(tt.chain, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if leaf == nil || len(cert.Certificate) != len(tt.chain) || cert.PrivateKey == nil {
				t.Fatalf("incomplete certificate: leaf %v, %d DER, key %T", leaf != nil, len(cert.Certificate), cert.PrivateKey)
			}
			if cert.Leaf != nil {
				t.Error("the parsed leaf is kept in the cached certificate (2 KB each)")
			}
		})
	}
}

// Certificates from one CA share one copy of its DER.
func TestIntermediatesShared(t *testing.T) {
	ca := testpki.NewCA(t)
	a, b := ca.Issue(t, "a.example.com"), ca.Issue(t, "b.example.com")
	// certstore sends each chain with its own copy of the CA.
	chainB := [][]byte{b.Chain[0], bytes.Clone(b.Chain[1])}
	ca1, _, err := certcache.ParseCertificate(a.Chain, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	ca2, _, err := certcache.ParseCertificate(chainB, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	if &ca1.Certificate[1][0] != &ca2.Certificate[1][0] {
		t.Fatal("two chains of one CA hold two copies of its DER")
	}
	if &ca1.Certificate[0][0] == &ca2.Certificate[0][0] {
		t.Fatal("leaves shared")
	}
	if certcache.EstimateSize(ca2) >= certcache.EstimateSize(&tls.Certificate{Certificate: chainB, PrivateKey: ca2.PrivateKey}) {
		t.Error("the shared intermediate is still counted in the estimate")
	}
}
