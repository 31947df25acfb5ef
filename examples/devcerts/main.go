// Command devcerts writes a throwaway CA and one mTLS certificate per Portico service
// identity (spiffe://portico/<service>) into a directory, for docker-compose and other
// local topologies where services talk across hosts and plaintext is refused. Production
// installs use cert-manager or certificates of their own (see the Helm chart).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "certs", "directory to write into (created if missing)")
	ids := flag.String("identities", "gateway,certstore,notary,controlapi", "comma-separated service identities")
	hosts := flag.String("hosts", "localhost,gateway,certstore,notary,controlapi", "comma-separated DNS names every certificate is valid for")
	days := flag.Int("days", 365, "validity in days")
	flag.Parse()
	if err := run(*out, strings.Split(*ids, ","), strings.Split(*hosts, ","), time.Duration(*days)*24*time.Hour); err != nil {
		log.Fatal(err)
	}
}

func run(out string, ids, hosts []string, validity time.Duration) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(out, "ca.pem")); err == nil {
		log.Printf("%s/ca.pem exists; keeping the existing certificates", out)
		return nil
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Portico development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEM(filepath.Join(out, "ca.pem"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	for _, id := range ids {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: id},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(validity),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			DNSNames:     hosts,
			URIs:         []*url.URL{{Scheme: "spiffe", Host: "portico", Path: "/" + id}},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(out, id+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(out, id+"-key.pem"), "PRIVATE KEY", keyDER); err != nil {
			return err
		}
	}
	fmt.Printf("wrote a CA and certificates for %s into %s\n", strings.Join(ids, ", "), out)
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// writePEM writes world-readable files: the containers that read them run as other
// users, and these are throwaway development keys.
func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644)
}
