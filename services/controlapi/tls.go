package main

import (
	"bytes"
	"crypto/tls"
	"errors"

	"github.com/portico-dev/portico/pkg/mtls"
)

// publicTLS is server TLS for the public API without client certificates (API keys
// authenticate), from a certificate re-read when its files change (mtls.KeyPair).
func publicTLS(kp *mtls.KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.Certificate() },
	}
}

// selfTLS is the JSON gateway's client TLS to its own gRPC listener over loopback.
// The certificate's names need not cover 127.0.0.1, so instead of checking names it pins
// the certificate this process serves: the peer's leaf must be exactly it.
func selfTLS(kp *mtls.KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			cur, err := kp.Certificate()
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
