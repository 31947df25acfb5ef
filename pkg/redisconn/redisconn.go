// Package redisconn holds the Redis settings every service shares and opens the client.
//
// One address is a single node (or a managed primary endpoint); several comma-separated
// addresses, or -redis-cluster, mean Redis Cluster. Portico's keys are laid out for
// Cluster (every script or transaction touches keys of one hash tag), so the same code
// runs on both.
package redisconn

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/pkg/config"
)

// Options are the Redis settings.
type Options struct {
	Addrs      string
	Username   string
	Password   string
	DB         int
	Cluster    bool
	TLS        bool
	KeyPrefix  string
	DialTimout time.Duration
}

// RegisterFlags adds the -redis-* flags with defaults for a local Redis.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addrs, "redis-addr", "127.0.0.1:6379", "Redis address host:port; several comma-separated for Redis Cluster")
	fs.StringVar(&o.Username, "redis-username", "", "Redis ACL user name")
	fs.StringVar(&o.Password, "redis-password", "", "Redis password (prefer the environment variable)")
	fs.IntVar(&o.DB, "redis-db", 0, "Redis database number (single node only; Cluster has only 0)")
	fs.BoolVar(&o.Cluster, "redis-cluster", false, "use the Redis Cluster protocol even with one seed address")
	fs.BoolVar(&o.TLS, "redis-tls", false, "connect to Redis over TLS")
	fs.StringVar(&o.KeyPrefix, "redis-key-prefix", "portico", "prefix of every Redis key, so several installations can share one Redis")
	fs.DurationVar(&o.DialTimout, "redis-dial-timeout", 5*time.Second, "Redis connect timeout")
}

// Validate records bad settings.
func (o *Options) Validate(p *config.Problems) {
	p.CheckRequired("redis-addr", o.Addrs)
	for _, a := range o.addrs() {
		p.CheckListen("redis-addr", a)
	}
	if o.DB < 0 || o.DB > 15 && !o.isCluster() {
		p.Addf("redis-db", "%d is not a database number (0 to 15 on a default Redis)", o.DB)
	}
	if o.isCluster() && o.DB != 0 {
		p.Addf("redis-db", "Redis Cluster has only database 0")
	}
	if strings.ContainsAny(o.KeyPrefix, "{} \t\n") || o.KeyPrefix == "" {
		p.Addf("redis-key-prefix", "%q must be non-empty without braces or spaces", o.KeyPrefix)
	}
}

func (o *Options) addrs() []string { return config.List(o.Addrs) }

func (o *Options) isCluster() bool { return o.Cluster || len(o.addrs()) > 1 }

// Open returns a client (single node or Cluster). It does not wait for Redis: services
// start without it and report NOT_SERVING until Ping succeeds.
func (o *Options) Open() redis.UniversalClient {
	u := &redis.UniversalOptions{
		Addrs:         o.addrs(),
		Username:      o.Username,
		Password:      o.Password,
		DB:            o.DB,
		DialTimeout:   o.DialTimout,
		IsClusterMode: o.isCluster(),
	}
	if o.TLS {
		u.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(u)
}

// Ping is a health check of the client.
func Ping(c redis.UniversalClient) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
}
