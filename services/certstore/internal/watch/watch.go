// Package watch is certstore's change log and its fan-out to Watch streams.
//
// Writes append to one Redis Stream (`<prefix>:changes`, trimmed to about MaxLen
// entries), so a write on any replica reaches every replica. Each certstore process runs
// one Hub: a single reader that follows the stream with a blocking XREAD and hands every
// change to the process's subscribers, so a thousand watching gateways cost one Redis
// connection, not a thousand.
//
// Revisions are stream entry ids ("1700000000000-0"), ordered. A subscriber that gives
// no revision, or one older than what the trimmed stream still holds, or one the stream
// never issued, first receives a RESET (drop everything cached) and then every change
// after the RESET's revision. A subscriber that resumes from a revision still held
// receives every change after it, replayed from the stream, then live ones, with no gap
// and no duplicate.
package watch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
)

// Change is one entry of the log.
type Change struct {
	Revision string
	Kind     certstorev1.ChangeKind
	// Name is the hostname or wildcard that changed; empty for RESET.
	Name string
}

// ErrBadRevision: a revision that is not a stream id.
var ErrBadRevision = errors.New("malformed revision")

// Log is the Redis Stream of changes.
type Log struct {
	rdb    redis.UniversalClient
	key    string
	maxLen int64
}

// NewLog returns the log under prefix, trimmed to about maxLen entries.
func NewLog(rdb redis.UniversalClient, prefix string, maxLen int64) *Log {
	return &Log{rdb: rdb, key: prefix + ":changes", maxLen: maxLen}
}

// Append records a change and returns its revision.
func (l *Log) Append(ctx context.Context, kind certstorev1.ChangeKind, name string) (string, error) {
	id, err := l.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: l.key,
		MaxLen: l.maxLen,
		Approx: true,
		Values: []any{"kind", int32(kind), "name", name},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("append change of %s: %w", name, err)
	}
	return id, nil
}

// position is what the stream has issued and what it still holds.
type position struct {
	last       streamID // the last id ever issued
	first      streamID // the first id still held; zero when the stream is empty
	maxDeleted streamID // the highest id removed by XDEL (trimming does not set it)
	trimmed    bool     // some entry was ever trimmed or deleted
}

func (l *Log) position(ctx context.Context) (position, error) {
	info, err := l.rdb.XInfoStream(ctx, l.key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return position{}, nil
		}
		return position{}, fmt.Errorf("read change log position: %w", err)
	}
	var p position
	var errs [3]error
	p.last, errs[0] = parseID(info.LastGeneratedID)
	p.maxDeleted, errs[1] = parseID(info.MaxDeletedEntryID)
	if info.Length > 0 {
		p.first, errs[2] = parseID(info.FirstEntry.ID)
	}
	p.trimmed = info.EntriesAdded > info.Length
	if err := errors.Join(errs[:]...); err != nil {
		return position{}, fmt.Errorf("read change log position: %w", err)
	}
	return p, nil
}

// holds reports whether every change after id is still in the stream: id is not from
// the future, and either nothing came after it, or nothing was ever removed, or it is
// at or after the first entry still held (trimming removes from the head). When id is older than the first entry
// held, the entries between them may have been trimmed: that counts as not held, which
// costs at most one unnecessary RESET.
func (p position) holds(id streamID) bool {
	switch {
	case p.last.less(id), id.less(p.maxDeleted):
		return false
	case id == p.last, !p.trimmed:
		return true
	}
	return p.first != (streamID{}) && !id.less(p.first)
}

// rangeAfter returns up to count changes after id (exclusive).
func (l *Log) rangeAfter(ctx context.Context, after streamID, count int64) ([]Change, error) {
	msgs, err := l.rdb.XRangeN(ctx, l.key, "("+after.String(), "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read change log: %w", err)
	}
	return toChanges(msgs), nil
}

// read blocks up to block for changes after id.
func (l *Log) read(ctx context.Context, after streamID, block time.Duration) ([]Change, error) {
	res, err := l.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{l.key, after.String()}, Count: 1000, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("follow change log: %w", err)
	}
	var out []Change
	for _, s := range res {
		out = append(out, toChanges(s.Messages)...)
	}
	return out, nil
}

func toChanges(msgs []redis.XMessage) []Change {
	out := make([]Change, 0, len(msgs))
	for _, m := range msgs {
		kind, _ := m.Values["kind"].(string)
		name, _ := m.Values["name"].(string)
		k, _ := strconv.ParseInt(kind, 10, 32)
		out = append(out, Change{Revision: m.ID, Kind: certstorev1.ChangeKind(k), Name: name})
	}
	return out
}

// streamID is a parsed stream entry id.
type streamID struct{ ms, seq uint64 }

func parseID(s string) (streamID, error) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, fmt.Errorf("%w %q", ErrBadRevision, s)
	}
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("%w %q", ErrBadRevision, s)
	}
	return streamID{ms, seq}, nil
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func (a streamID) String() string { return fmt.Sprintf("%d-%d", a.ms, a.seq) }

func maxID(a, b streamID) streamID {
	if a.less(b) {
		return b
	}
	return a
}
