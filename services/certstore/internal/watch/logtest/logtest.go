// Package logtest is the contract suite every watch.Log runs, through the Hub that
// follows it: delivery to the watchers of several replicas within a second, resuming
// from a revision, RESET for revisions the log cannot answer for, slow watchers, and
// revisions under concurrent appends. One test body for Redis and DynamoDB.
//
//	func TestContract(t *testing.T) {
//		logtest.Run(t, func(t *testing.T) watch.Log { return newLogForTest(t) })
//	}
package logtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
)

// Run runs the contract against empty, isolated logs made by newLog. Two calls of the
// returned log's methods from different hubs model two certstore replicas.
func Run(t *testing.T, newLog func(t *testing.T) watch.Log) {
	tests := []struct {
		name string
		fn   func(t *testing.T, log watch.Log)
	}{
		{"TwoSubscribersOnTwoReplicasWithinASecond", testTwoSubscribers},
		{"Resume", testResume},
		{"SlowWatcherCatchesUp", testSlowWatcher},
		{"HubStopEndsWatchers", testHubStop},
		{"ResumeFromTheEmptyLogsRevision", testResumeFromEmpty},
		{"ConcurrentAppendsGetDistinctOrderedRevisions", testConcurrentAppends},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLog(t)) })
	}
}

const (
	put   = certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT
	reset = certstorev1.ChangeKind_CHANGE_KIND_RESET
)

// StartHub runs a hub (one replica) over the log and stops it at cleanup.
func StartHub(t *testing.T, log watch.Log, buffer int) *watch.Hub {
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

// Watcher collects what one Watch call sends.
type Watcher struct {
	ch   chan watch.Change
	done chan error
}

// StartWatch runs one Watch call on hub from after and collects what it sends.
func StartWatch(t *testing.T, hub *watch.Hub, after string) *Watcher {
	t.Helper()
	w := &Watcher{ch: make(chan watch.Change, 10000), done: make(chan error, 1)}
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

// Next returns the next change sent, failing the test when none comes within within.
func (w *Watcher) Next(t *testing.T, within time.Duration) watch.Change {
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

// ExpectNothing fails the test when a change is sent within d.
func (w *Watcher) ExpectNothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-w.ch:
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(d):
	}
}

// testTwoSubscribers: a change appended through one replica's
// client reaches a watcher on each of two replicas (two hubs) within a second.
func testTwoSubscribers(t *testing.T, log watch.Log) {
	hubs := []*watch.Hub{StartHub(t, log, 16), StartHub(t, log, 16)}
	var ws []*Watcher
	for _, hub := range hubs {
		w := StartWatch(t, hub, "")
		if c := w.Next(t, 5*time.Second); c.Kind != reset {
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
			c := w.Next(t, time.Second)
			if c.Name != name || c.Kind != put || c.Revision != rev {
				t.Fatalf("change %d on replica %d: %+v, want %s %s at %s", i, j, c, put, name, rev)
			}
			t.Logf("change %d reached replica %d after %v", i, j, time.Since(start).Round(time.Microsecond))
		}
	}
}

func testResume(t *testing.T, log watch.Log) {
	hub := StartHub(t, log, 16)
	var revs []string
	for i := range 5 {
		rev, err := log.Append(t.Context(), put, fmt.Sprintf("n%d.example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}

	t.Run("from a held revision: the changes after it, then live ones", func(t *testing.T) {
		w := StartWatch(t, hub, revs[1])
		for i := 2; i < 5; i++ {
			if c := w.Next(t, 2*time.Second); c.Revision != revs[i] || c.Name != fmt.Sprintf("n%d.example.com", i) {
				t.Fatalf("replayed %+v, want revision %s", c, revs[i])
			}
		}
		live, _ := log.Append(t.Context(), put, "live.example.com")
		if c := w.Next(t, time.Second); c.Revision != live {
			t.Fatalf("live %+v, want %s", c, live)
		}
		w.ExpectNothing(t, 100*time.Millisecond)
	})
	t.Run("from the latest revision: nothing replayed", func(t *testing.T) {
		last, _ := log.Append(t.Context(), put, "last.example.com")
		w := StartWatch(t, hub, last)
		w.ExpectNothing(t, 200*time.Millisecond)
	})
	t.Run("from a revision the stream never issued: RESET", func(t *testing.T) {
		w := StartWatch(t, hub, "99999999999999-0")
		if c := w.Next(t, 2*time.Second); c.Kind != reset {
			t.Fatalf("got %+v, want RESET", c)
		}
	})
	t.Run("a malformed revision", func(t *testing.T) {
		err := hub.Watch(t.Context(), "not-a-revision", func(watch.Change) error { return nil })
		if !errors.Is(err, watch.ErrBadRevision) {
			t.Fatalf("err = %v, want ErrBadRevision", err)
		}
	})
}

// testSlowWatcher: a watcher far slower than the writes overflows its buffer
// and is caught up from the stream: it still gets every change once, in order.
func testSlowWatcher(t *testing.T, log watch.Log) {
	hub := StartHub(t, log, 2)
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

// testHubStop: when the process stops, watchers end with ErrClosed so the
// gateway reconnects elsewhere.
func testHubStop(t *testing.T, log watch.Log) {
	hub := watch.NewHub(log, zaptest.NewLogger(t), 4)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		hub.Run(ctx)
		close(stopped)
	}()
	w := StartWatch(t, hub, "")
	w.Next(t, 5*time.Second)
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

// testResumeFromEmpty: a watcher that got its RESET before anything was written
// resumes without another RESET, since nothing was trimmed.
func testResumeFromEmpty(t *testing.T, log watch.Log) {
	hub := StartHub(t, log, 16)
	first := StartWatch(t, hub, "").Next(t, 5*time.Second)
	if first.Kind != reset {
		t.Fatalf("first message %+v, want RESET", first)
	}
	rev, err := log.Append(t.Context(), put, "a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	w := StartWatch(t, hub, first.Revision)
	if c := w.Next(t, 2*time.Second); c.Revision != rev || c.Kind != put {
		t.Fatalf("resumed with %+v, want the change at %s (no RESET)", c, rev)
	}
}

// testConcurrentAppends: appends from many goroutines (as from many replicas) get
// distinct revisions, and the log replays all of them in revision order.
func testConcurrentAppends(t *testing.T, log watch.Log) {
	const writers, each = 8, 10
	var mu sync.Mutex
	revs := map[string]string{} // revision -> name
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("w%d-%d.example.com", w, i)
				rev, err := log.Append(t.Context(), put, name)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if other, dup := revs[rev]; dup {
					t.Errorf("revision %s issued to %s and %s", rev, other, name)
				}
				revs[rev] = name
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var got []watch.Change
	after := watch.Revision{}
	for len(got) < writers*each {
		page, err := log.After(t.Context(), after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			rev, err := watch.ParseRevision(c.Revision)
			if err != nil {
				t.Fatal(err)
			}
			if !after.Less(rev) {
				t.Fatalf("revision %s after %s: out of order", rev, after)
			}
			if revs[c.Revision] != c.Name {
				t.Fatalf("replayed %s at %s, appended as %s", c.Name, c.Revision, revs[c.Revision])
			}
			after = rev
		}
		got = append(got, page...)
	}
	if len(got) != writers*each {
		t.Fatalf("replayed %d changes, want %d", len(got), writers*each)
	}
	last, err := log.Last(t.Context())
	if err != nil || last != after {
		t.Fatalf("Last = %v, %v; want the last replayed %v", last, err, after)
	}
}
