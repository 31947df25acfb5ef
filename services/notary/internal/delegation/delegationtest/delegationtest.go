// Package delegationtest is the contract suite every delegation.Store runs.
package delegationtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/notary/internal/delegation"
)

// Run runs the contract against fresh, isolated stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) delegation.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s delegation.Store)
	}{
		{"EmptyLabelHasNoValues", testEmpty},
		{"TwoValuesAtOneLabel", testTwoValues},
		{"LabelsAreSeparate", testLabels},
		{"AddingAgainKeepsOneCopy", testAddAgain},
		{"RemoveOneLeavesTheOther", testRemove},
		{"Expiry", testExpiry},
		{"AddingAgainExtendsLife", testExtend},
		{"ConcurrentAdds", testConcurrent},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

const label = "k3xq7n2m4p5r6s7t"

func values(t *testing.T, s delegation.Store, label string) []string {
	t.Helper()
	v, err := s.Values(t.Context(), label)
	if err != nil {
		t.Fatalf("Values(%s): %v", label, err)
	}
	if v == nil {
		t.Fatalf("Values(%s) = nil, want an empty slice", label)
	}
	return v
}

func add(t *testing.T, s delegation.Store, label, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Add(t.Context(), label, value, ttl); err != nil {
		t.Fatalf("Add(%s, %s): %v", label, value, err)
	}
}

func want(t *testing.T, s delegation.Store, label string, w ...string) {
	t.Helper()
	if w == nil {
		w = []string{}
	}
	if got := values(t, s, label); !slices.Equal(got, w) {
		t.Fatalf("Values(%s) = %q, want %q", label, got, w)
	}
}

func testEmpty(t *testing.T, s delegation.Store) {
	want(t, s, label)
}

func testTwoValues(t *testing.T, s delegation.Store) {
	add(t, s, label, "wildcard-value", time.Minute)
	add(t, s, label, "apex-value", time.Minute)
	want(t, s, label, "apex-value", "wildcard-value")
}

func testLabels(t *testing.T, s delegation.Store) {
	add(t, s, label, "v1", time.Minute)
	want(t, s, "otherlabel")
}

func testAddAgain(t *testing.T, s delegation.Store) {
	add(t, s, label, "v1", time.Minute)
	add(t, s, label, "v1", time.Minute)
	want(t, s, label, "v1")
}

func testRemove(t *testing.T, s delegation.Store) {
	add(t, s, label, "v1", time.Minute)
	add(t, s, label, "v2", time.Minute)
	for range 2 { // removing again is not an error
		if err := s.Remove(t.Context(), label, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	want(t, s, label, "v2")
	if err := s.Remove(t.Context(), label, "v2"); err != nil {
		t.Fatal(err)
	}
	want(t, s, label)
	if err := s.Remove(t.Context(), "neverused", "v"); err != nil {
		t.Fatalf("Remove at an unused label: %v", err)
	}
}

func testExpiry(t *testing.T, s delegation.Store) {
	add(t, s, label, "short", 100*time.Millisecond)
	add(t, s, label, "long", time.Minute)
	time.Sleep(250 * time.Millisecond)
	want(t, s, label, "long")
}

func testExtend(t *testing.T, s delegation.Store) {
	add(t, s, label, "v1", 150*time.Millisecond)
	add(t, s, label, "v1", time.Minute)
	// A shorter ttl does not shorten the life already granted.
	add(t, s, label, "v1", 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	want(t, s, label, "v1")
}

func testConcurrent(t *testing.T, s delegation.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	var w []string
	for i := range 20 {
		v := fmt.Sprintf("value-%02d", i)
		w = append(w, v)
		wg.Go(func() { errs <- s.Add(t.Context(), label, v, time.Minute) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want(t, s, label, w...)
}

func testCancelled(t *testing.T, s delegation.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Add(ctx, label, "v", time.Minute); err == nil {
		t.Fatal("Add with a cancelled context succeeded")
	}
	if _, err := s.Values(ctx, label); err == nil {
		t.Fatal("Values with a cancelled context succeeded")
	}
	want(t, s, label)
}
