package watch_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/gateway/internal/fakecertstore"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
	"github.com/portico-dev/portico/services/gateway/internal/watch"
)

// recorder is an Invalidator that remembers its calls ("RESET" for Reset), and claims
// to hold certificates when held is set.
type recorder struct {
	mu    sync.Mutex
	calls []string
	held  int
}

func (r *recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

func (r *recorder) Invalidate(name string) { r.add(name) }
func (r *recorder) Reset()                 { r.add("RESET") }
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// waitFor polls until the recorder has seen want (in order), failing after 3 s.
func (r *recorder) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = append(got, r.take()...)
		if len(got) >= len(want) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("invalidations = %q, want %q", got, want)
	}
}

func waitConnected(t *testing.T, w *watch.Watcher, want bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		got, changed := w.Connected()
		if got == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("Connected stayed %v, want %v", got, want)
		}
	}
}

func start(t *testing.T, store *fakecertstore.Server, inv watch.Invalidator) *watch.Watcher {
	t.Helper()
	w := watch.New(store.Client(t), inv, watch.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w
}

func TestWatchAppliesChanges(t *testing.T) {
	ca := testpki.NewCA(t)
	store := fakecertstore.Start(t)
	store.Put("before.example.com", ca.Issue(t, "before.example.com")) // before the watch: covered by RESET
	inv := &recorder{}
	w := start(t, store, inv)

	inv.waitFor(t, "RESET")
	waitConnected(t, w, true)

	store.Put("a.example.com", ca.Issue(t, "a.example.com"))
	store.Put("*.example.org", ca.Issue(t, "*.example.org"))
	store.SetRoute(&certstorev1.Route{Hostname: "b.example.org", TenantId: "t1"})
	store.Delete("a.example.com")
	inv.waitFor(t, "a.example.com", "*.example.org", "b.example.org", "a.example.com")
}

// After a disconnect the stream resumes from the last revision: changes made meanwhile
// arrive, without a RESET.
func TestWatchResumesAfterOutage(t *testing.T) {
	ca := testpki.NewCA(t)
	store := fakecertstore.Start(t)
	inv := &recorder{held: 1}
	w := start(t, store, inv)
	inv.waitFor(t, "RESET")
	waitConnected(t, w, true)
	store.Put("a.example.com", ca.Issue(t, "a.example.com"))
	inv.waitFor(t, "a.example.com")
	rev := w.Revision()

	store.Stop()
	waitConnected(t, w, false)
	store.Put("during.example.com", ca.Issue(t, "during.example.com"))
	store.Restart()
	waitConnected(t, w, true)
	inv.waitFor(t, "during.example.com")
	if w.Revision() == rev {
		t.Fatal("revision did not advance")
	}
	if store.Watches() < 2 {
		t.Fatalf("watches = %d, want a reconnect", store.Watches())
	}
}

// When certstore no longer keeps the revision, the resumed stream starts with RESET.
func TestWatchResetWhenHistoryIsGone(t *testing.T) {
	ca := testpki.NewCA(t)
	store := fakecertstore.Start(t)
	inv := &recorder{held: 1}
	w := start(t, store, inv)
	inv.waitFor(t, "RESET")
	store.Put("a.example.com", ca.Issue(t, "a.example.com"))
	inv.waitFor(t, "a.example.com")

	store.Stop()
	waitConnected(t, w, false)
	store.Put("lost.example.com", ca.Issue(t, "lost.example.com"))
	store.ForgetHistory()
	store.Restart()
	inv.waitFor(t, "RESET")
	waitConnected(t, w, true)
}

// With nothing cached there is nothing to resume for: the watcher starts afresh, and the
// immediate RESET shows it is connected even if no change follows.
func TestWatchStartsAfreshWhenCacheIsEmpty(t *testing.T) {
	ca := testpki.NewCA(t)
	store := fakecertstore.Start(t)
	inv := &recorder{}
	w := start(t, store, inv)
	inv.waitFor(t, "RESET")
	store.Put("a.example.com", ca.Issue(t, "a.example.com"))
	inv.waitFor(t, "a.example.com")

	store.Stop()
	waitConnected(t, w, false)
	store.Restart()
	inv.waitFor(t, "RESET")
	waitConnected(t, w, true)
}
