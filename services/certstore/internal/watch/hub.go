package watch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
)

// ErrClosed: the hub stopped (the process is shutting down); the watcher should
// reconnect, to this replica or another, with its last revision.
var ErrClosed = errors.New("change feed closed")

// errSlow closes a subscription that fell a whole buffer behind; Watch then catches up
// from the stream itself, so a slow watcher costs a replay, not a lost change.
var errSlow = errors.New("watcher fell behind")

// Hub follows the change log with one reader and fans changes out to watchers.
type Hub struct {
	log    Log
	logger *zap.Logger
	buffer int
	block  time.Duration

	ready chan struct{}

	mu     sync.Mutex
	last   Revision
	subs   map[*subscription]struct{}
	closed bool
}

type subscription struct {
	ch  chan Change
	err error // set before ch is closed
}

// NewHub returns a hub over log; each watcher buffers up to buffer changes.
func NewHub(log Log, logger *zap.Logger, buffer int) *Hub {
	return &Hub{log: log, logger: logger, buffer: max(buffer, 1), block: time.Second,
		ready: make(chan struct{}), subs: map[*subscription]struct{}{}}
}

// Register adds the hub's gauges to reg: certstore_watchers, the Watch streams this
// process serves.
func (h *Hub) Register(reg prometheus.Registerer) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "certstore_watchers",
		Help: "Watch streams this certstore process is serving.",
	}, func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return float64(len(h.subs))
	}))
}

// Run follows the log until ctx ends, then closes every subscription with ErrClosed.
func (h *Hub) Run(ctx context.Context) error {
	defer h.closeAll()
	last, err := h.lastRetrying(ctx)
	if err != nil {
		return nil // ctx ended
	}
	h.mu.Lock()
	h.last = last
	h.mu.Unlock()
	close(h.ready)

	for ctx.Err() == nil {
		h.mu.Lock()
		after := h.last
		h.mu.Unlock()
		changes, err := h.log.Wait(ctx, after, h.block)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.logger.Warn("change log unreadable; retrying", zap.Error(err))
			if h.recover(ctx) != nil {
				return nil
			}
			continue
		}
		for _, c := range changes {
			h.broadcast(c)
		}
	}
	return nil
}

// retrying calls f every second until it succeeds or ctx ends.
func retrying[T any](ctx context.Context, h *Hub, f func(context.Context) (T, error)) (T, error) {
	for {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		h.logger.Warn("change log unreachable; watchers wait", zap.Error(err))
		select {
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// lastRetrying reads the log's last revision, retrying until it succeeds or ctx ends.
func (h *Hub) lastRetrying(ctx context.Context) (Revision, error) {
	return retrying(ctx, h, h.log.Last)
}

// recover waits for the log to answer again; if changes after the hub's position were
// trimmed meanwhile, every watcher gets a RESET.
func (h *Hub) recover(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	h.mu.Lock()
	at := h.last
	h.mu.Unlock()
	held, err := retrying(ctx, h, func(ctx context.Context) (bool, error) { return h.log.Holds(ctx, at) })
	if err != nil {
		return err
	}
	if held {
		return nil
	}
	last, err := h.lastRetrying(ctx)
	if err != nil {
		return err
	}
	h.logger.Warn("changes were trimmed while the change log was unreadable; resetting watchers")
	h.broadcast(Change{Revision: last.String(), Kind: certstorev1.ChangeKind_CHANGE_KIND_RESET})
	return nil
}

func (h *Hub) broadcast(c Change) {
	id, err := ParseRevision(c.Revision)
	if err != nil {
		h.logger.Error("change log entry with a bad id", zap.String("revision", c.Revision))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if id.Less(h.last) || id == h.last && c.Kind != certstorev1.ChangeKind_CHANGE_KIND_RESET {
		return
	}
	h.last = id
	for s := range h.subs {
		select {
		case s.ch <- c:
		default:
			s.err = errSlow
			close(s.ch)
			delete(h.subs, s)
		}
	}
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.err = ErrClosed
		close(s.ch)
		delete(h.subs, s)
	}
}

// subscribe registers a watcher and returns the hub's position: the subscription gets
// every change after it.
func (h *Hub) subscribe() (*subscription, Revision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, Revision{}, ErrClosed
	}
	s := &subscription{ch: make(chan Change, h.buffer)}
	h.subs[s] = struct{}{}
	return s, h.last, nil
}

func (h *Hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// Watch calls send with every change after the revision after (empty: a RESET, then
// every change from now on), in order, until ctx ends, send fails, or the hub closes
// (ErrClosed). It returns ErrBadRevision for a malformed revision.
func (h *Hub) Watch(ctx context.Context, after string, send func(Change) error) error {
	var from Revision
	fromNow := after == ""
	if !fromNow {
		var err error
		if from, err = ParseRevision(after); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.ready:
	}
	for {
		sub, start, err := h.subscribe()
		if err != nil {
			return err
		}
		lastSent, err := h.catchUp(ctx, fromNow, from, start, send)
		if err != nil {
			h.unsubscribe(sub)
			return err
		}
		fromNow = false
		lastSent, err = h.follow(ctx, sub, lastSent, send)
		if !errors.Is(err, errSlow) {
			return err
		}
		h.logger.Debug("watcher fell behind; replaying from the change log", zap.String("revision", lastSent.String()))
		from = lastSent
	}
}

// catchUp sends what comes before the live changes: a RESET when the watcher cannot be
// told what changed since from, otherwise the changes after from up to start, replayed
// from the log. It returns the last revision the watcher has.
func (h *Hub) catchUp(ctx context.Context, fromNow bool, from, start Revision, send func(Change) error) (Revision, error) {
	reset := func() (Revision, error) {
		return start, send(Change{Revision: start.String(), Kind: certstorev1.ChangeKind_CHANGE_KIND_RESET})
	}
	if fromNow {
		return reset()
	}
	held, err := h.log.Holds(ctx, from)
	if err != nil {
		return from, err
	}
	if !held {
		return reset()
	}
	lastSent := from
	for lastSent.Less(start) {
		changes, err := h.log.After(ctx, lastSent, 500)
		if err != nil {
			return lastSent, err
		}
		if len(changes) == 0 {
			break
		}
		for _, c := range changes {
			id, err := ParseRevision(c.Revision)
			if err != nil {
				return lastSent, err
			}
			if start.Less(id) {
				return lastSent, nil // the live feed has it
			}
			if err := send(c); err != nil {
				return lastSent, err
			}
			lastSent = id
		}
	}
	return MaxRevision(lastSent, from), nil
}

// follow sends live changes newer than lastSent.
func (h *Hub) follow(ctx context.Context, sub *subscription, lastSent Revision, send func(Change) error) (Revision, error) {
	for {
		select {
		case <-ctx.Done():
			h.unsubscribe(sub)
			return lastSent, ctx.Err()
		case c, ok := <-sub.ch:
			if !ok {
				return lastSent, sub.err
			}
			id, err := ParseRevision(c.Revision)
			if err != nil || !lastSent.Less(id) && c.Kind != certstorev1.ChangeKind_CHANGE_KIND_RESET {
				continue
			}
			if err := send(c); err != nil {
				h.unsubscribe(sub)
				return lastSent, fmt.Errorf("send change: %w", err)
			}
			lastSent = MaxRevision(lastSent, id)
		}
	}
}
