// Package challengetest is the contract suite every challenges.Store runs.
package challengetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/challenges"
)

// Run runs the contract against fresh, isolated stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) challenges.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s challenges.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"KindsAreSeparate", testKinds},
		{"Expiry", testExpiry},
		{"DeleteIsIdempotent", testDelete},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var entry = challenges.Entry{Kind: challenges.KindACME, Name: "tok_EN-1", Host: "shop.example.com", Content: "tok_EN-1.thumb"}

func testRoundTrip(t *testing.T, s challenges.Store) {
	if _, err := s.Get(t.Context(), entry.Kind, entry.Name); !errors.Is(err, challenges.ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}
	if err := s.Put(t.Context(), entry, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), entry.Kind, entry.Name)
	if err != nil || got != entry {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, entry)
	}
	replaced := entry
	replaced.Content = "other"
	if err := s.Put(t.Context(), replaced, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(t.Context(), entry.Kind, entry.Name); got.Content != "other" {
		t.Fatalf("Put did not replace: %+v", got)
	}
}

func testKinds(t *testing.T, s challenges.Store) {
	if err := s.Put(t.Context(), entry, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), challenges.KindPKIValidation, entry.Name); !errors.Is(err, challenges.ErrNotFound) {
		t.Fatalf("an ACME entry was found as pki-validation: %v", err)
	}
}

func testExpiry(t *testing.T, s challenges.Store) {
	if err := s.Put(t.Context(), entry, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := s.Get(t.Context(), entry.Kind, entry.Name); !errors.Is(err, challenges.ErrNotFound) {
		t.Fatalf("expired entry: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s challenges.Store) {
	if err := s.Put(t.Context(), entry, time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Delete(t.Context(), entry.Kind, entry.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(t.Context(), entry.Kind, entry.Name); !errors.Is(err, challenges.ErrNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
}

func testCancelled(t *testing.T, s challenges.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, entry, time.Minute); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
}
