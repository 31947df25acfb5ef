package watch_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
	"github.com/portico-dev/portico/services/certstore/internal/watch/logtest"
)

const (
	put   = certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT
	reset = certstorev1.ChangeKind_CHANGE_KIND_RESET
)

func TestContract(t *testing.T) {
	logtest.Run(t, func(t *testing.T) watch.Log {
		log, _, _ := newLog(t)
		return log
	})
}

func newLog(t *testing.T) (*watch.RedisLog, *redis.Client, string) {
	rdb, prefix := redistest.New(t)
	return watch.NewRedisLog(rdb, prefix, 100000), rdb, prefix
}

// TestResumeFromATrimmedRevision: a watcher resuming from a revision the stream no
// longer holds gets a RESET, then live changes.
func TestResumeFromATrimmedRevision(t *testing.T) {
	log, rdb, prefix := newLog(t)
	hub := logtest.StartHub(t, log, 16)
	var revs []string
	for range 5 {
		rev, err := log.Append(t.Context(), put, "n.example.com")
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	if err := rdb.XTrimMaxLen(t.Context(), prefix+":changes", 2).Err(); err != nil {
		t.Fatal(err)
	}
	w := logtest.StartWatch(t, hub, revs[0])
	c := w.Next(t, 2*time.Second)
	if c.Kind != reset || c.Revision == "" {
		t.Fatalf("got %+v, want RESET with a revision", c)
	}
	live, _ := log.Append(t.Context(), put, "after-trim.example.com")
	if c := w.Next(t, time.Second); c.Revision != live {
		t.Fatalf("after RESET %+v, want %s", c, live)
	}
}
