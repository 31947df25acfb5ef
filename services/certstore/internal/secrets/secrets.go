// Package secrets keeps certstore's private keys: the Backend interface that the local
// (envelope encryption under a key-encryption key) and AWS Secrets Manager backends
// implement, and Cache, which holds decrypted keys for a bounded time so that a cold
// gateway fleet does not flood the backend.
//
// A Backend turns a private key into a reference that the certificate record keeps
// (store.Certificate.KeyRef). For the local backend the reference is the envelope
// ciphertext itself, so it lives inside the record; for AWS it is the secret's name.
//
// Private keys never appear in errors, logs or metrics: errors name the certificate and
// the reference kind, never the key bytes.
package secrets

import (
	"context"
	"errors"
)

// ErrNotFound: the reference points to no key (it was removed, for instance by a newer
// put of the same certificate).
var ErrNotFound = errors.New("private key not found")

// Backend stores private keys.
//
// Contract: Seal returns a fresh reference for every call, even for the same key, and
// the key is readable through it as soon as Seal returns. Open returns the key that
// Seal stored under the same name and reference; a reference used with another name is
// refused (it is bound to the name). Remove makes the reference unreadable where the
// backend holds the key itself (for the local backend the reference is the ciphertext,
// so removing the record removes the key, and Remove does nothing); removing a
// reference twice is not an error. Every method is safe for concurrent use and honours
// ctx.
type Backend interface {
	// Seal stores key (PKCS#8 DER) for the certificate name and returns its reference.
	Seal(ctx context.Context, name string, key []byte) (ref []byte, err error)
	// Open returns the key behind ref; ErrNotFound when it was removed.
	Open(ctx context.Context, name string, ref []byte) ([]byte, error)
	// Remove deletes the key behind ref.
	Remove(ctx context.Context, name string, ref []byte) error
	// Kind names the backend ("local", "aws") for logs and metrics.
	Kind() string
}
