package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves the public API's certificate and re-reads the files when either
// changes (cert-manager and ACME clients replace them in place), checking at most every
// reloadEvery. A broken replacement keeps the last good pair in service.
type certReloader struct {
	certFile, keyFile string

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	checkedAt time.Time
}

const reloadEvery = 10 * time.Second

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.cert != nil && now.Sub(r.checkedAt) < reloadEvery {
		return r.cert, nil
	}
	r.checkedAt = now
	cs, cerr := os.Stat(r.certFile)
	ks, kerr := os.Stat(r.keyFile)
	if cerr != nil || kerr != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, fmt.Errorf("public API certificate: %w", errors.Join(cerr, kerr))
	}
	if r.cert != nil && cs.ModTime().Equal(r.certMod) && ks.ModTime().Equal(r.keyMod) {
		return r.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, fmt.Errorf("public API certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.certMod, r.keyMod = &pair, cs.ModTime(), ks.ModTime()
	return r.cert, nil
}

// serverConfig is server TLS without client certificates: API keys authenticate.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
	}
}

// selfConfig is the JSON gateway's client TLS to its own gRPC listener over loopback.
// The certificate's names need not cover 127.0.0.1, so instead of checking names it pins
// the certificate this process serves: the peer's leaf must be exactly it.
func (r *certReloader) selfConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			cur, err := r.get()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 || len(cur.Certificate) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, cur.Certificate[0]) {
				return errors.New("loopback peer does not present this process's certificate")
			}
			return nil
		},
	}
}
