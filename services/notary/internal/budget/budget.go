// Package budget counts the notary's orders and certificates against the CA's rate
// limits, for the whole deployment (every replica), so that the notary stays under them
// instead of learning them from the CA's refusals.
//
// # Contract
//
//   - Admit records an order (id, at now) when the orders window (3 hours, all
//     registered domains) and the registered domain's certificates window (7 days) both
//     have room, and answers the counts after the call. A full window refuses without
//     recording, with RetryAt the time its oldest entry leaves it.
//   - Issued records a certificate issued under a registered domain and returns that
//     window's count.
//   - An entry is in a window while it is younger than the window: at now, entries at or
//     before now minus the window are gone.
//   - Concurrent Admits from any number of replicas never record more orders than the
//     orders limit within its window.
//   - A window whose limit is 0 is not checked; its count may read 0 (a store need not
//     keep an unlimited window).
//   - Times are the caller's (now), kept to the millisecond.
//   - Every method honours ctx and is safe for concurrent use by many processes.
//
// Implementations: membudget (one process, tests), redisbudget (sorted sets, one Lua
// script), dynamobudget (one item per window, compare-and-swap). All run budgettest.
package budget

import (
	"context"
	"time"
)

// Limits are the CA's rate limits the notary keeps under (Let's Encrypt's by default).
type Limits struct {
	// OrdersPer3h is new orders per account per 3 hours; 0 disables the check.
	OrdersPer3h int
	// CertsPerDomainPer7d is certificates per registered domain per 7 days; 0 disables.
	CertsPerDomainPer7d int
}

// Usage is the budget after a call.
type Usage struct {
	Orders3h, Certs7d int
	// Admitted is false when a window is full; RetryAt is when room appears.
	Admitted bool
	RetryAt  time.Time
}

// The windows.
const (
	OrdersWindow = 3 * time.Hour
	CertsWindow  = 7 * 24 * time.Hour
)

// Store counts orders and certificates. See the package documentation for the contract.
type Store interface {
	// Admit records an order for a name under registered when both windows have room.
	Admit(ctx context.Context, registered string, now time.Time, id string) (Usage, error)
	// Issued records a certificate issued under registered and returns the window's count.
	Issued(ctx context.Context, registered string, now time.Time, id string) (int, error)
}
