package acmeclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-acme/lego/v5/certcrypto"
)

// AccountKeyStore keeps the ACME account key that every replica of a deployment shares.
//
// Contract: LoadOrCreate returns the stored key, or creates one, stores it and returns
// it. Creation is atomic: replicas starting together all end up with the same key (the
// first writer wins and the others read its key).
type AccountKeyStore interface {
	LoadOrCreate(ctx context.Context) (crypto.Signer, error)
}

// FileKeyStore keeps the account key in a PEM file, created 0600 when absent (in
// Kubernetes, a Secret mounted into every replica, as cert-manager keeps its account
// keys; a shared secrets-store backend is planned).
type FileKeyStore struct {
	Path string
}

// LoadOrCreate implements AccountKeyStore.
func (f FileKeyStore) LoadOrCreate(context.Context) (crypto.Signer, error) {
	if key, err := f.load(); !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Write to a temporary file, then link it into place: the link fails when another
	// replica created the key first, and nobody ever reads a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".acme-account-*.pem")
	if err != nil {
		return nil, fmt.Errorf("ACME account key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), f.Path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("ACME account key %s: %w", f.Path, err)
	}
	return f.load()
}

func (f FileKeyStore) load() (crypto.Signer, error) {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, err
	}
	key, err := certcrypto.ParsePEMPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("ACME account key %s: %w", f.Path, err)
	}
	return key, nil
}
