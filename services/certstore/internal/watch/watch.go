// Package watch is certstore's change log and its fan-out to Watch streams.
//
// Writes append to one shared Log, so a write on any replica reaches every replica:
// RedisLog (a Redis Stream, trimmed to about a length) or dynamolog.Log (numbered items
// in DynamoDB, kept for a retention period). Each certstore process runs one Hub: a
// single reader that follows the log and hands every change to the process's
// subscribers, so a thousand watching gateways cost one reader, not a thousand.
//
// Revisions are ordered pairs of numbers written "<major>-<minor>" (a stream entry id
// such as "1700000000000-0" on Redis, "<sequence>-0" on DynamoDB). A subscriber that
// gives no revision, or one older than what the log still holds, or one the log never
// issued, first receives a RESET (drop everything cached) and then every change after the
// RESET's revision. A subscriber that resumes from a revision still held receives every
// change after it, replayed from the log, then live ones, with no gap and no duplicate.
//
// Every Log runs the contract suite in logtest.
package watch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
)

// Change is one entry of the log.
type Change struct {
	Revision string
	Kind     certstorev1.ChangeKind
	// Name is the hostname or wildcard that changed; empty for RESET.
	Name string
}

// ErrBadRevision: a revision that is not "<number>-<number>".
var ErrBadRevision = errors.New("malformed revision")

// Log is the change log every replica appends to and follows.
//
// Contract: revisions are issued in increasing order and never reused, even after the
// entries they named are gone; a change is readable by every replica once Append
// returns; After and Wait return changes in revision order without gaps (an
// implementation that finds entries missing in a range returns an error rather than
// skip them, so the hub resets its watchers); every method honours ctx.
type Log interface {
	// Append records a change and returns its revision.
	Append(ctx context.Context, kind certstorev1.ChangeKind, name string) (string, error)
	// Last returns the newest revision ever issued (zero when none was).
	Last(ctx context.Context) (Revision, error)
	// Holds reports whether every change after rev can still be read: rev is not from
	// the future, and nothing after it was trimmed or expired.
	Holds(ctx context.Context, rev Revision) (bool, error)
	// After returns up to count changes after rev, oldest first.
	After(ctx context.Context, rev Revision, count int) ([]Change, error)
	// Wait returns the changes after rev, oldest first, waiting up to block for the
	// first one; none when block passes.
	Wait(ctx context.Context, rev Revision, block time.Duration) ([]Change, error)
}

// Revision is a parsed revision.
type Revision struct{ Major, Minor uint64 }

// ParseRevision reads "<major>-<minor>"; ErrBadRevision when s is not one.
func ParseRevision(s string) (Revision, error) {
	majorPart, minorPart, ok := strings.Cut(s, "-")
	if !ok {
		return Revision{}, fmt.Errorf("%w %q", ErrBadRevision, s)
	}
	major, err1 := strconv.ParseUint(majorPart, 10, 64)
	minor, err2 := strconv.ParseUint(minorPart, 10, 64)
	if err1 != nil || err2 != nil {
		return Revision{}, fmt.Errorf("%w %q", ErrBadRevision, s)
	}
	return Revision{major, minor}, nil
}

// Less reports whether a comes before b.
func (a Revision) Less(b Revision) bool {
	return a.Major < b.Major || a.Major == b.Major && a.Minor < b.Minor
}

func (a Revision) String() string { return fmt.Sprintf("%d-%d", a.Major, a.Minor) }

// MaxRevision returns the later of a and b.
func MaxRevision(a, b Revision) Revision {
	if a.Less(b) {
		return b
	}
	return a
}
