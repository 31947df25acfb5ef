// Package mtls builds the TLS configurations of Portico's internal gRPC traffic and reads
// the caller's identity from a verified client certificate.
//
// An identity is the path of a SPIFFE-style URI SAN in the configured trust domain:
// `spiffe://portico/gateway` is the identity "gateway". Servers require and verify client
// certificates against the CA bundle; certificate and key files are re-read when they
// change on disk (cert-manager rotates them in place), so no restart is needed.
package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// DefaultTrustDomain is the URI host identities are issued under.
const DefaultTrustDomain = "portico"

// Files names the PEM files of one side of a connection.
type Files struct {
	Cert string // this side's certificate chain
	Key  string // this side's private key
	CA   string // the CA bundle the other side is verified against
}

// Enabled reports whether any file is set; a partial set is an error in Check.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Check reports a missing file of an enabled set.
func (f Files) Check() error {
	if !f.Enabled() {
		return nil
	}
	var missing []string
	for name, v := range map[string]string{"cert": f.Cert, "key": f.Key, "ca": f.CA} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("mTLS needs cert, key and ca together; missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// ServerConfig is a TLS 1.2+ server configuration that requires a client certificate
// signed by f.CA.
func ServerConfig(f Files) (*tls.Config, error) {
	pool, kp, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.Certificate() },
	}, nil
}

// ClientConfig is a TLS 1.2+ client configuration presenting f.Cert and verifying the
// server against f.CA. serverName overrides the name checked in the server certificate
// (empty: the dialed host).
func ClientConfig(f Files, serverName string) (*tls.Config, error) {
	pool, kp, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              pool,
		ServerName:           serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.Certificate() },
	}, nil
}

func load(f Files) (*x509.CertPool, *KeyPair, error) {
	if err := f.Check(); err != nil {
		return nil, nil, err
	}
	if !f.Enabled() {
		return nil, nil, errors.New("mTLS files are not configured")
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f.CA)
	}
	kp, err := LoadKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, err
	}
	return pool, kp, nil
}

// KeyPair is a certificate and its key read from files, re-read when either file's
// modification time changes (checking at most every 10 seconds), so certificates that
// cert-manager or an ACME client replace in place are picked up without a restart. A
// missing or broken replacement keeps the last good pair in service.
type KeyPair struct {
	certFile, keyFile string

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	checkedAt time.Time
}

var reloadInterval = 10 * time.Second

// LoadKeyPair reads the pair once, failing when it cannot.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile}
	if _, err := kp.Certificate(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Certificate returns the current pair.
func (k *KeyPair) Certificate() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if k.cert != nil && now.Sub(k.checkedAt) < reloadInterval {
		return k.cert, nil
	}
	k.checkedAt = now
	cs, cerr := os.Stat(k.certFile)
	ks, kerr := os.Stat(k.keyFile)
	if cerr != nil || kerr != nil {
		if k.cert != nil {
			return k.cert, nil // keep serving the last good pair while files are replaced
		}
		return nil, fmt.Errorf("stat certificate files: %w", errors.Join(cerr, kerr))
	}
	if k.cert != nil && cs.ModTime().Equal(k.certMod) && ks.ModTime().Equal(k.keyMod) {
		return k.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("load certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.certMod, k.keyMod = &pair, cs.ModTime(), ks.ModTime()
	return k.cert, nil
}

// IdentityOf returns the identity in a certificate's URI SANs for trustDomain.
func IdentityOf(cert *x509.Certificate, trustDomain string) (string, bool) {
	for _, u := range cert.URIs {
		if id, ok := identityOfURI(u, trustDomain); ok {
			return id, true
		}
	}
	return "", false
}

func identityOfURI(u *url.URL, trustDomain string) (string, bool) {
	if u.Scheme != "spiffe" || u.Host != trustDomain {
		return "", false
	}
	id := strings.TrimPrefix(u.Path, "/")
	if id == "" {
		return "", false
	}
	return id, true
}

// URI is the SAN that carries identity id.
func URI(trustDomain, id string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/" + id}
}

// PeerIdentity returns the identity of a gRPC call's verified client certificate.
func PeerIdentity(ctx context.Context, trustDomain string) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return IdentityOf(info.State.VerifiedChains[0][0], trustDomain)
}

// RegisterFlags adds -<prefix>-cert, -<prefix>-key and -<prefix>-ca. whose describes the
// connection in the help text ("this server's", "the certstore client's").
func (f *Files) RegisterFlags(fs *flag.FlagSet, prefix, whose string) {
	fs.StringVar(&f.Cert, prefix+"-cert", "", whose+" mTLS certificate chain (PEM); empty with key and ca for plaintext on loopback")
	fs.StringVar(&f.Key, prefix+"-key", "", whose+" mTLS private key (PEM)")
	fs.StringVar(&f.CA, prefix+"-ca", "", "CA bundle (PEM) that "+whose+" peers are verified against")
}
