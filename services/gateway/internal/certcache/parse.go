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
	"sync"
)

// ParseCertificate turns certstore's wire form (DER chain, leaf first; PKCS#8 key) into a
// ready-to-serve certificate: the key decoded once and checked to match the leaf. This is
// the only place the gateway parses certificates or keys; it runs once per fetch, never
// per handshake.
//
// The parsed leaf is returned for the caller's checks (names, expiry) but not kept in the
// certificate's Leaf field: crypto/tls's server never reads Leaf (it signs with the
// decoded key and sends the DER as is), and a parsed x509.Certificate is about 2 KB, half
// of what a cached ECDSA certificate costs. BenchmarkServerHandshake shows a handshake
// allocates the same with and without Leaf. Intermediates are shared between the
// certificates that carry the same one (see internIntermediate).
func ParseCertificate(chain [][]byte, pkcs8 []byte) (*tls.Certificate, *x509.Certificate, error) {
	if len(chain) == 0 || len(chain[0]) == 0 {
		return nil, nil, errors.New("empty certificate chain")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parse leaf certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	if !publicKeysEqual(leaf.PublicKey, signer.Public()) {
		return nil, nil, errors.New("private key does not match the leaf certificate")
	}
	der := make([][]byte, len(chain))
	der[0] = chain[0]
	for i := 1; i < len(chain); i++ {
		der[i] = internIntermediate(chain[i])
	}
	return &tls.Certificate{Certificate: der, PrivateKey: signer}, leaf, nil
}

// Intermediates: a CA signs thousands of the certificates a gateway holds, and each
// certstore answer carries its own copy of the CA's DER. The first copy of each
// intermediate is kept and shared; the table holds at most maxIntermediates (a CA has a
// handful), after which new ones are simply not shared.
const maxIntermediates = 256

var intermediates = struct {
	sync.Mutex
	byDER map[string][]byte
}{byDER: map[string][]byte{}}

func internIntermediate(der []byte) []byte {
	intermediates.Lock()
	defer intermediates.Unlock()
	if shared, ok := intermediates.byDER[string(der)]; ok {
		return shared
	}
	if len(intermediates.byDER) < maxIntermediates {
		intermediates.byDER[string(der)] = der
	}
	return der
}

// isInterned reports whether der is the shared copy of an intermediate.
func isInterned(der []byte) bool {
	intermediates.Lock()
	defer intermediates.Unlock()
	shared, ok := intermediates.byDER[string(der)]
	return ok && len(shared) > 0 && &shared[0] == &der[0]
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
