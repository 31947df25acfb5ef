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

// RedisLog is the change log as one Redis Stream (`<prefix>:changes`, trimmed to about
// maxLen entries). Revisions are stream entry ids ("1700000000000-0"). Hub follows it
// with a blocking XREAD, so a change reaches every replica at once.
type RedisLog struct {
	rdb    redis.UniversalClient
	key    string
	maxLen int64
}

var _ Log = (*RedisLog)(nil)

// NewRedisLog returns the log under prefix, trimmed to about maxLen entries.
func NewRedisLog(rdb redis.UniversalClient, prefix string, maxLen int64) *RedisLog {
	return &RedisLog{rdb: rdb, key: prefix + ":changes", maxLen: maxLen}
}

// Append records a change and returns its revision.
func (l *RedisLog) Append(ctx context.Context, kind certstorev1.ChangeKind, name string) (string, error) {
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
	last       Revision // the last id ever issued
	first      Revision // the first id still held; zero when the stream is empty
	maxDeleted Revision // the highest id removed by XDEL (trimming does not set it)
	trimmed    bool     // some entry was ever trimmed or deleted
}

func (l *RedisLog) position(ctx context.Context) (position, error) {
	info, err := l.rdb.XInfoStream(ctx, l.key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return position{}, nil
		}
		return position{}, fmt.Errorf("read change log position: %w", err)
	}
	var p position
	var errs [3]error
	p.last, errs[0] = ParseRevision(info.LastGeneratedID)
	p.maxDeleted, errs[1] = ParseRevision(info.MaxDeletedEntryID)
	if info.Length > 0 {
		p.first, errs[2] = ParseRevision(info.FirstEntry.ID)
	}
	p.trimmed = info.EntriesAdded > info.Length
	if err := errors.Join(errs[:]...); err != nil {
		return position{}, fmt.Errorf("read change log position: %w", err)
	}
	return p, nil
}

// Last implements Log.
func (l *RedisLog) Last(ctx context.Context) (Revision, error) {
	p, err := l.position(ctx)
	return p.last, err
}

// Holds implements Log.
func (l *RedisLog) Holds(ctx context.Context, rev Revision) (bool, error) {
	p, err := l.position(ctx)
	if err != nil {
		return false, err
	}
	return p.holds(rev), nil
}

// holds reports whether every change after id is still in the stream: id is not from
// the future, and either nothing came after it, or nothing was ever removed, or it is
// at or after the first entry still held (trimming removes from the head). When id is older than the first entry
// held, the entries between them may have been trimmed: that counts as not held, which
// costs at most one unnecessary RESET.
func (p position) holds(id Revision) bool {
	switch {
	case p.last.Less(id), id.Less(p.maxDeleted):
		return false
	case id == p.last, !p.trimmed:
		return true
	}
	return p.first != (Revision{}) && !id.Less(p.first)
}

// After implements Log.
func (l *RedisLog) After(ctx context.Context, after Revision, count int) ([]Change, error) {
	msgs, err := l.rdb.XRangeN(ctx, l.key, "("+after.String(), "+", int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("read change log: %w", err)
	}
	return toChanges(msgs), nil
}

// Wait implements Log with one blocking XREAD.
func (l *RedisLog) Wait(ctx context.Context, after Revision, block time.Duration) ([]Change, error) {
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
