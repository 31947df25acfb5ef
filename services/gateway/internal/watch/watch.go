// Package watch follows certstore's Watch stream and drops the cache entries each change
// makes wrong, so a certificate put in certstore is served within a second instead of
// after a negative TTL, and a removed domain stops being served.
//
// The stream is resumed after a disconnect from the last revision received, so no change
// is missed; when certstore no longer keeps that revision (or on the first connection, or
// when nothing is cached and there is nothing to keep) it begins with RESET and the whole
// cache is dropped. Reconnects back off exponentially
// from MinBackoff to MaxBackoff, and start over from MinBackoff once a stream has
// delivered something.
//
// Connected reports whether a stream is open and certstore has answered on it; it feeds
// the gateway's readiness.
package watch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/logging"
)

// Invalidator is what the watcher changes: the certificate cache.
type Invalidator interface {
	// Invalidate drops what a change to name (a hostname or `*.base`) makes wrong.
	Invalidate(name string)
	// Reset drops everything.
	Reset()
	// Len is the number of certificates held.
	Len() int
}

// Config tunes reconnects; zero values take the defaults.
type Config struct {
	MinBackoff time.Duration // default 100 ms
	MaxBackoff time.Duration // default 5 s
}

// Watcher runs the stream. Build it with New and call Run.
type Watcher struct {
	rpc   certstorev1.CertReadServiceClient
	cache Invalidator
	cfg   Config
	log   *zap.Logger

	mu        sync.Mutex
	connected bool
	changed   chan struct{} // closed and replaced whenever connected changes
	revision  string

	connectedGauge prometheus.Gauge
	events         *prometheus.CounterVec
	reconnects     prometheus.Counter
}

// New builds a watcher. reg receives gateway_certstore_watch_connected,
// gateway_certstore_watch_events_total{kind} and gateway_certstore_watch_reconnects_total
// (nil: not registered).
func New(rpc certstorev1.CertReadServiceClient, cache Invalidator, cfg Config, log *zap.Logger, reg prometheus.Registerer) *Watcher {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	w := &Watcher{
		rpc: rpc, cache: cache, cfg: cfg, log: log,
		changed: make(chan struct{}),
		connectedGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_certstore_watch_connected",
			Help: "1 while the Watch stream to certstore is open and answering.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_certstore_watch_events_total",
			Help: "Changes received from certstore's Watch stream, by kind.",
		}, []string{"kind"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_certstore_watch_reconnects_total",
			Help: "Watch streams that ended and were reopened.",
		}),
	}
	if reg != nil {
		reg.MustRegister(w.connectedGauge, w.events, w.reconnects)
	}
	return w
}

// Connected reports whether the stream is open and certstore has answered on it, and
// returns a channel closed at the next change of that answer.
func (w *Watcher) Connected() (bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.connected, w.changed
}

// Revision is the last revision received ("" before any).
func (w *Watcher) Revision() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.revision
}

// Run follows the stream until ctx ends; it returns nil then.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := w.cfg.MinBackoff
	for {
		delivered, err := w.stream(ctx)
		w.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if delivered {
			backoff = w.cfg.MinBackoff
		}
		w.reconnects.Inc()
		w.log.Warn("certstore watch stream ended; cached entries may go stale until it is back",
			zap.String("revision", w.Revision()), zap.Duration("retry_in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// stream runs one Watch call; delivered reports whether certstore answered on it.
func (w *Watcher) stream(ctx context.Context) (delivered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Resume only when there is something to keep: with no certificate cached a fresh
	// stream loses nothing, and its RESET arrives at once, which proves the stream is up
	// even when no change follows for a long time.
	after := w.Revision()
	if w.cache.Len() == 0 {
		after = ""
	}
	stream, err := w.rpc.Watch(ctx, &certstorev1.WatchRequest{AfterRevision: after})
	if err != nil {
		return false, err
	}
	// Headers mean certstore accepted the stream, even if no change follows for a while.
	if md, err := stream.Header(); err == nil && md != nil {
		w.setConnected(true)
		delivered = true
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.Canceled && ctx.Err() != nil {
				return delivered, nil
			}
			if errors.Is(err, context.Canceled) {
				return delivered, nil
			}
			return delivered, err
		}
		w.apply(ev)
		if !delivered {
			w.setConnected(true)
			delivered = true
		}
	}
}

func (w *Watcher) apply(ev *certstorev1.WatchResponse) {
	kind := ev.GetKind()
	w.events.WithLabelValues(kind.String()).Inc()
	switch kind {
	case certstorev1.ChangeKind_CHANGE_KIND_RESET:
		w.cache.Reset()
		w.log.Info("certstore watch reset: dropped every cached certificate", zap.String("revision", ev.GetRevision()))
	default: // a put, a delete, a route change, a removal, or a kind added later
		if ev.GetHostname() == "" {
			// A change this gateway cannot place: drop everything rather than guess.
			w.cache.Reset()
			w.log.Warn("certstore change without a hostname: dropped every cached certificate", zap.Stringer("kind", kind))
			break
		}
		w.cache.Invalidate(ev.GetHostname())
		w.log.Debug("certstore change", logging.Hostname(ev.GetHostname()), zap.Stringer("kind", kind), zap.String("revision", ev.GetRevision()))
	}
	if ev.GetRevision() != "" {
		w.mu.Lock()
		w.revision = ev.GetRevision()
		w.mu.Unlock()
	}
}

func (w *Watcher) setConnected(c bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connected == c {
		return
	}
	w.connected = c
	close(w.changed)
	w.changed = make(chan struct{})
	if c {
		w.connectedGauge.Set(1)
	} else {
		w.connectedGauge.Set(0)
	}
}
