package watch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
)

const (
	put   = certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT
	reset = certstorev1.ChangeKind_CHANGE_KIND_RESET
)

// startHub runs a hub (one replica) over the log and stops it at cleanup.
func startHub(t *testing.T, log *watch.Log, buffer int) *watch.Hub {
	t.Helper()
	hub := watch.NewHub(log, zaptest.NewLogger(t), buffer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		hub.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return hub
}

// watcher collects what one Watch call sends.
type watcher struct {
	ch   chan watch.Change
	done chan error
}

func startWatch(t *testing.T, hub *watch.Hub, after string) *watcher {
	t.Helper()
	w := &watcher{ch: make(chan watch.Change, 10000), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go func() {
		w.done <- hub.Watch(ctx, after, func(c watch.Change) error {
			w.ch <- c
			return nil
		})
	}()
	return w
}

func (w *watcher) next(t *testing.T, within time.Duration) watch.Change {
	t.Helper()
	select {
	case c := <-w.ch:
		return c
	case err := <-w.done:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(within):
		t.Fatalf("no change within %v", within)
	}
	return watch.Change{}
}

func (w *watcher) expectNothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-w.ch:
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(d):
	}
}

func newLog(t *testing.T) (*watch.Log, *redis.Client, string) {
	rdb, prefix := redistest.New(t)
	return watch.NewLog(rdb, prefix, 100000), rdb, prefix
}

// TestTwoSubscribersOnTwoReplicasWithinASecond: a change appended through one replica's
// client reaches a watcher on each of two replicas (two hubs) within a second.
func TestTwoSubscribersOnTwoReplicasWithinASecond(t *testing.T) {
	log, _, _ := newLog(t)
	hubs := []*watch.Hub{startHub(t, log, 16), startHub(t, log, 16)}
	var ws []*watcher
	for _, hub := range hubs {
		w := startWatch(t, hub, "")
		if c := w.next(t, 5*time.Second); c.Kind != reset {
			t.Fatalf("first message %+v, want RESET", c)
		}
		ws = append(ws, w)
	}
	for i, name := range []string{"a.example.com", "*.example.com"} {
		start := time.Now()
		rev, err := log.Append(t.Context(), put, name)
		if err != nil {
			t.Fatal(err)
		}
		for j, w := range ws {
			c := w.next(t, time.Second)
			if c.Name != name || c.Kind != put || c.Revision != rev {
				t.Fatalf("change %d on replica %d: %+v, want %s %s at %s", i, j, c, put, name, rev)
			}
			t.Logf("change %d reached replica %d after %v", i, j, time.Since(start).Round(time.Microsecond))
		}
	}
}

func TestResume(t *testing.T) {
	log, rdb, prefix := newLog(t)
	hub := startHub(t, log, 16)
	var revs []string
	for i := range 5 {
		rev, err := log.Append(t.Context(), put, fmt.Sprintf("n%d.example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}

	t.Run("from a held revision: the changes after it, then live ones", func(t *testing.T) {
		w := startWatch(t, hub, revs[1])
		for i := 2; i < 5; i++ {
			if c := w.next(t, 2*time.Second); c.Revision != revs[i] || c.Name != fmt.Sprintf("n%d.example.com", i) {
				t.Fatalf("replayed %+v, want revision %s", c, revs[i])
			}
		}
		live, _ := log.Append(t.Context(), put, "live.example.com")
		if c := w.next(t, time.Second); c.Revision != live {
			t.Fatalf("live %+v, want %s", c, live)
		}
		w.expectNothing(t, 100*time.Millisecond)
	})
	t.Run("from the latest revision: nothing replayed", func(t *testing.T) {
		last, _ := log.Append(t.Context(), put, "last.example.com")
		w := startWatch(t, hub, last)
		w.expectNothing(t, 200*time.Millisecond)
	})
	t.Run("from a revision the stream never issued: RESET", func(t *testing.T) {
		w := startWatch(t, hub, "99999999999999-0")
		if c := w.next(t, 2*time.Second); c.Kind != reset {
			t.Fatalf("got %+v, want RESET", c)
		}
	})
	t.Run("from a trimmed revision: RESET, then live changes", func(t *testing.T) {
		if err := rdb.XTrimMaxLen(t.Context(), prefix+":changes", 2).Err(); err != nil {
			t.Fatal(err)
		}
		w := startWatch(t, hub, revs[0])
		c := w.next(t, 2*time.Second)
		if c.Kind != reset || c.Revision == "" {
			t.Fatalf("got %+v, want RESET with a revision", c)
		}
		live, _ := log.Append(t.Context(), put, "after-trim.example.com")
		if c := w.next(t, time.Second); c.Revision != live {
			t.Fatalf("after RESET %+v, want %s", c, live)
		}
	})
	t.Run("a malformed revision", func(t *testing.T) {
		err := hub.Watch(t.Context(), "not-a-revision", func(watch.Change) error { return nil })
		if !errors.Is(err, watch.ErrBadRevision) {
			t.Fatalf("err = %v, want ErrBadRevision", err)
		}
	})
}

// TestSlowWatcherCatchesUp: a watcher far slower than the writes overflows its buffer
// and is caught up from the stream: it still gets every change once, in order.
func TestSlowWatcherCatchesUp(t *testing.T) {
	log, _, _ := newLog(t)
	hub := startHub(t, log, 2)
	const n = 60
	var (
		mu   sync.Mutex
		got  []string
		gate = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- hub.Watch(ctx, "", func(c watch.Change) error {
			if c.Kind == reset {
				close(gate)
				return nil
			}
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			got = append(got, c.Name)
			mu.Unlock()
			return nil
		})
	}()
	<-gate
	for i := range n {
		if _, err := log.Append(t.Context(), put, fmt.Sprintf("n%02d.example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		count := len(got)
		mu.Unlock()
		if count >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // any duplicate would arrive now
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("got %d changes, want %d: %v", len(got), n, got)
	}
	for i, name := range got {
		if want := fmt.Sprintf("n%02d.example.com", i); name != want {
			t.Fatalf("change %d is %s, want %s (order or duplicates broken)", i, name, want)
		}
	}
}

// TestHubStopEndsWatchers: when the process stops, watchers end with ErrClosed so the
// gateway reconnects elsewhere.
func TestHubStopEndsWatchers(t *testing.T) {
	log, _, _ := newLog(t)
	hub := watch.NewHub(log, zaptest.NewLogger(t), 4)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		hub.Run(ctx)
		close(stopped)
	}()
	w := startWatch(t, hub, "")
	w.next(t, 5*time.Second)
	cancel()
	<-stopped
	select {
	case err := <-w.done:
		if !errors.Is(err, watch.ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("watcher still running after the hub stopped")
	}
}

// TestResumeFromTheEmptyStreamsRevision: a watcher that got its RESET before anything
// was written resumes without another RESET, since nothing was trimmed.
func TestResumeFromTheEmptyStreamsRevision(t *testing.T) {
	log, _, _ := newLog(t)
	hub := startHub(t, log, 16)
	first := startWatch(t, hub, "").next(t, 5*time.Second)
	if first.Kind != reset {
		t.Fatalf("first message %+v, want RESET", first)
	}
	rev, err := log.Append(t.Context(), put, "a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, hub, first.Revision)
	if c := w.next(t, 2*time.Second); c.Revision != rev || c.Kind != put {
		t.Fatalf("resumed with %+v, want the change at %s (no RESET)", c, rev)
	}
}
