package certcache

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ParseCertificate turns certstore's wire form (DER chain, leaf first; PKCS#8 key) into a
// ready-to-serve certificate: the leaf parsed into Leaf, the key decoded and checked to
// match the leaf. This is the only place the gateway parses certificates or keys; it runs
// once per fetch, never per handshake.
func ParseCertificate(chain [][]byte, pkcs8 []byte) (*tls.Certificate, error) {
	if len(chain) == 0 || len(chain[0]) == 0 {
		return nil, errors.New("empty certificate chain")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("parse leaf certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	if !publicKeysEqual(leaf.PublicKey, signer.Public()) {
		return nil, errors.New("private key does not match the leaf certificate")
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: signer, Leaf: leaf}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		return a.Equal(b)
	case *rsa.PublicKey:
		return a.Equal(b)
	case ed25519.PublicKey:
		return a.Equal(b)
	}
	return false
}
