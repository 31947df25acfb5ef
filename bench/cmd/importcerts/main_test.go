package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes name.crt (leaf + self-signed CA) and name.key in the harness's format.
func writePair(t *testing.T, dir, name string) (leafDER, keyDER []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{name}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ = x509.MarshalPKCS8PrivateKey(key)
	var crt bytes.Buffer
	pem.Encode(&crt, &pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	pem.Encode(&crt, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	os.WriteFile(filepath.Join(dir, name+".crt"), crt.Bytes(), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return leafDER, keyDER
}

func TestReadPair(t *testing.T) {
	dir := t.TempDir()
	leaf, key := writePair(t, dir, "d00001.bench.test")
	os.WriteFile(filepath.Join(dir, "nocert.crt"), []byte("nothing here"), 0o600)
	os.WriteFile(filepath.Join(dir, "badkey.crt"), []byte(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf})), 0o600)
	os.WriteFile(filepath.Join(dir, "badkey.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600)

	tests := []struct {
		name    string
		wantErr string
	}{
		{name: "d00001.bench.test"},
		{name: "missing", wantErr: "no such file"},
		{name: "nocert", wantErr: "holds no certificate"},
		{name: "badkey", wantErr: "no PKCS#8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, k, err := readPair(dir, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 2 || !bytes.Equal(chain[0], leaf) || !bytes.Equal(k, key) {
				t.Fatalf("chain of %d, leaf first %v, key equal %v", len(chain), bytes.Equal(chain[0], leaf), bytes.Equal(k, key))
			}
		})
	}
}
