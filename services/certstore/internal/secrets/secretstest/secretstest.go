// Package secretstest is the contract suite of secrets.Backend, run by every backend
// (localkek, awssm).
package secretstest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/portico-dev/portico/services/certstore/internal/secrets"
)

// Run runs the contract against backends from newBackend. holdsKeys says whether Remove
// makes a reference unreadable (true for backends that store the key themselves).
func Run(t *testing.T, newBackend func(t *testing.T) secrets.Backend, holdsKeys bool) {
	key := []byte("0\x81\x87not really PKCS#8 but opaque to a backend")
	t.Run("SealOpenRoundTrip", func(t *testing.T) {
		b := newBackend(t)
		for _, name := range []string{"shop.example.com", "*.example.com"} {
			ref, err := b.Seal(t.Context(), name, key)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(ref, key) {
				t.Errorf("%s: the reference contains the key in the clear", name)
			}
			got, err := b.Open(t.Context(), name, ref)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, key) {
				t.Errorf("%s: Open = %q, want the sealed key", name, got)
			}
		}
	})
	t.Run("FreshReferenceEverySeal", func(t *testing.T) {
		b := newBackend(t)
		r1, err1 := b.Seal(t.Context(), "a.example.com", key)
		r2, err2 := b.Seal(t.Context(), "a.example.com", key)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(r1, r2) {
			t.Fatal("two seals of the same key gave the same reference")
		}
	})
	t.Run("ReferenceBoundToName", func(t *testing.T) {
		b := newBackend(t)
		ref, err := b.Seal(t.Context(), "a.example.com", key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Open(t.Context(), "b.example.com", ref)
		if err == nil {
			t.Fatalf("Open with another name's reference = %q, want an error", got)
		}
		if bytes.Contains([]byte(err.Error()), key) {
			t.Fatalf("error %q contains the key", err)
		}
	})
	t.Run("Remove", func(t *testing.T) {
		b := newBackend(t)
		ref, err := b.Seal(t.Context(), "a.example.com", key)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := b.Remove(t.Context(), "a.example.com", ref); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		}
		_, err = b.Open(t.Context(), "a.example.com", ref)
		if holdsKeys && !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("Open after Remove: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		b := newBackend(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := b.Seal(ctx, "a.example.com", key); err == nil {
			t.Fatal("Seal with a cancelled context succeeded")
		}
	})
}
