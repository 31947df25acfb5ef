// Package limitertest is the contract suite every ratelimit.Limiter runs: one test body
// for the memory and the Redis implementation.
//
//	func TestContract(t *testing.T) {
//		limitertest.Run(t, func(t *testing.T) ratelimit.Limiter { return newLimiterForTest(t) })
//	}
package limitertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/controlapi/internal/ratelimit"
)

// Run runs the contract against limiters made by newLimiter (isolated from other tests,
// cleaned up by the test).
func Run(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l ratelimit.Limiter)
	}{
		{"BurstThenRefusalWithRetryHint", testBurstThenRefusal},
		{"RefusalConsumesNothing", testRefusalConsumesNothing},
		{"KeysAreIndependent", testKeysAreIndependent},
		{"ConcurrentCallersShareTheBurst", testConcurrent},
		{"UnlimitedAllowsEverything", testUnlimited},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newLimiter(t))
		})
	}
}

// key is unique per call, so a limiter shared between tests cannot mix them up.
func key(name string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return name + ":" + hex.EncodeToString(b)
}

func allow(t *testing.T, l ratelimit.Limiter, k string, lim ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), k, lim)
	if err != nil {
		t.Fatalf("Allow(%s): %v", k, err)
	}
	return d
}

func testBurstThenRefusal(t *testing.T, l ratelimit.Limiter) {
	lim := ratelimit.Limit{Rate: 5, Period: time.Hour, Burst: 5}
	k := key("burst")
	for i := range lim.Burst {
		if d := allow(t, l, k, lim); !d.Allowed || d.RetryAfter != 0 {
			t.Fatalf("event %d of a burst of %d: %+v, want allowed without a hint", i+1, lim.Burst, d)
		}
	}
	d := allow(t, l, k, lim)
	if d.Allowed {
		t.Fatalf("event %d allowed past a burst of %d", lim.Burst+1, lim.Burst)
	}
	// One event every 12 minutes: the next is due in at most that, and well over 11.
	if d.RetryAfter <= 11*time.Minute || d.RetryAfter > lim.Interval() {
		t.Fatalf("retry hint %v, want just under %v", d.RetryAfter, lim.Interval())
	}
}

func testRefusalConsumesNothing(t *testing.T, l ratelimit.Limiter) {
	// One event per 250 ms and no burst beyond it, so that a slow machine sleeping past
	// the hint still cannot earn two events.
	lim := ratelimit.Limit{Rate: 4, Period: time.Second, Burst: 1}
	k := key("refill")
	if !allow(t, l, k, lim).Allowed {
		t.Fatal("the first event was refused")
	}
	var hint time.Duration
	for range 5 { // refusals must not push the next allowed event further out
		d := allow(t, l, k, lim)
		if d.Allowed {
			t.Fatal("allowed past the burst")
		}
		hint = d.RetryAfter
	}
	if hint <= 0 || hint > lim.Interval() {
		t.Fatalf("retry hint %v after repeated refusals, want within %v", hint, lim.Interval())
	}
	time.Sleep(hint + 20*time.Millisecond)
	if d := allow(t, l, k, lim); !d.Allowed {
		t.Fatalf("refused after waiting the hint: %+v", d)
	}
	if d := allow(t, l, k, lim); d.Allowed {
		t.Fatal("two events allowed after one interval")
	}
}

func testKeysAreIndependent(t *testing.T, l ratelimit.Limiter) {
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	a, b := key("a"), key("b")
	if !allow(t, l, a, lim).Allowed || allow(t, l, a, lim).Allowed {
		t.Fatal("key a: want one event then a refusal")
	}
	if !allow(t, l, b, lim).Allowed {
		t.Fatal("key b was limited by key a's events")
	}
}

func testConcurrent(t *testing.T, l ratelimit.Limiter) {
	lim := ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 10}
	k := key("concurrent")
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			d, err := l.Allow(t.Context(), k, lim)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != int32(lim.Burst) {
		t.Fatalf("%d of 40 concurrent events allowed, want exactly the burst of %d", got, lim.Burst)
	}
}

func testUnlimited(t *testing.T, l ratelimit.Limiter) {
	k := key("unlimited")
	for range 100 {
		if !allow(t, l, k, ratelimit.Limit{}).Allowed {
			t.Fatal("the zero Limit refused an event")
		}
	}
}

func testCancelledContext(t *testing.T, l ratelimit.Limiter) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	k := key("cancel")
	if _, err := l.Allow(ctx, k, lim); err == nil {
		t.Fatal("Allow with a cancelled context succeeded")
	}
	if !allow(t, l, k, lim).Allowed {
		t.Fatal("a cancelled call consumed the only event of the burst")
	}
}
