// Package leases gives the notary one exclusive, expiring claim per domain, so that of
// many replicas exactly one works on a domain at a time.
//
// # Contract
//
//   - Acquire is one atomic conditional write: it succeeds only when nobody holds the key
//     (or the holder's lease expired), and then stores a fresh random token with the
//     expiry. Otherwise it returns ErrHeld. Never read-then-write.
//   - Renew extends the lease only while the token still holds it; otherwise ErrLost and
//     nothing changes. Release deletes it only while the token still holds it; a lease
//     that expired and was taken by someone else is never released by the old holder
//     (ErrLost).
//   - A lease expires on its own after its TTL unless renewed, so a killed holder blocks
//     nobody for longer than the TTL.
//   - Keys are hostnames; implementations keep them apart per installation (key prefix)
//     and, for Redis Cluster, in a hash tag per key.
//   - Every method honours ctx and is safe for concurrent use by many processes.
//
// Implementations: memlease (one process, tests), redislease (Redis SET NX PX and Lua
// compare-token scripts), dynamolease (DynamoDB conditional writes that check the expiry).
// All run the contract suite in leasetest.
package leases

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

var (
	// ErrHeld: someone else holds the lease.
	ErrHeld = errors.New("lease held by another holder")
	// ErrLost: the lease expired and is gone or belongs to another holder now.
	ErrLost = errors.New("lease lost")
)

// Lease is a held claim.
type Lease struct {
	Key   string
	Token string
	// Expires is the holder's local estimate of the expiry (the store's clock decides).
	Expires time.Time
}

// Store hands out leases. See the package documentation for the contract.
type Store interface {
	Acquire(ctx context.Context, key string, ttl time.Duration) (Lease, error)
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	Release(ctx context.Context, l Lease) error
}

// NewToken returns a random token (128 bits).
func NewToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hold runs fn while keeping l renewed every ttl/3. fn's context is cancelled when a
// renewal finds the lease lost (or cannot reach the store until the lease would have
// expired), so work stops before another holder can start. The lease is released when fn
// returns. Hold returns fn's error, or ErrLost when the lease was lost meanwhile.
func Hold(ctx context.Context, s Store, l Lease, ttl time.Duration, fn func(ctx context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(wctx, ttl/3)
			nl, err := s.Renew(rctx, l, ttl)
			rcancel()
			switch {
			case err == nil:
				l = nl
			case errors.Is(err, ErrLost) || time.Now().After(l.Expires.Add(-ttl/6)):
				cancel(ErrLost)
				return
			}
		}
	}()
	err := fn(wctx)
	cancel(nil)
	<-done
	lost := errors.Is(context.Cause(wctx), ErrLost)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer rcancel()
	if rerr := s.Release(rctx, l); errors.Is(rerr, ErrLost) {
		lost = true
	}
	if lost && err == nil {
		return ErrLost
	}
	if lost {
		return errors.Join(err, ErrLost)
	}
	return err
}
