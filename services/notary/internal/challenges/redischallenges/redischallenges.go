// Package redischallenges keeps challenge answers in Redis, one key per entry
// (`<prefix>:challenge:{<kind>:<name>}`, JSON, with a TTL), so every notary replica
// answers the CA whichever one presented the token.
package redischallenges

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/services/notary/internal/challenges"
)

// Store is a Redis challenge store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ challenges.Store = (*Store)(nil)

// New returns a store whose keys start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Store { return &Store{rdb: rdb, prefix: prefix} }

func (s *Store) key(kind challenges.Kind, name string) string {
	return s.prefix + ":challenge:{" + string(kind) + ":" + name + "}"
}

// record is the stored form; its JSON names are the storage format.
type record struct {
	Host    string `json:"host"`
	Content string `json:"content"`
}

// Put implements challenges.Store.
func (s *Store) Put(ctx context.Context, e challenges.Entry, ttl time.Duration) error {
	b, err := json.Marshal(record{Host: e.Host, Content: e.Content})
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.key(e.Kind, e.Name), b, ttl).Err(); err != nil {
		return fmt.Errorf("store challenge: %w", err)
	}
	return nil
}

// Get implements challenges.Store.
func (s *Store) Get(ctx context.Context, kind challenges.Kind, name string) (challenges.Entry, error) {
	b, err := s.rdb.Get(ctx, s.key(kind, name)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return challenges.Entry{}, challenges.ErrNotFound
	case err != nil:
		return challenges.Entry{}, fmt.Errorf("read challenge: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return challenges.Entry{}, fmt.Errorf("read challenge: %w", err)
	}
	return challenges.Entry{Kind: kind, Name: name, Host: r.Host, Content: r.Content}, nil
}

// Delete implements challenges.Store.
func (s *Store) Delete(ctx context.Context, kind challenges.Kind, name string) error {
	if err := s.rdb.Del(ctx, s.key(kind, name)).Err(); err != nil {
		return fmt.Errorf("delete challenge: %w", err)
	}
	return nil
}
