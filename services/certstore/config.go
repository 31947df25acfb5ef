package main

import (
	"flag"
	"time"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/redisconn"
)

// Config is certstore's configuration.
type Config struct {
	Listen       string
	HealthListen string
	AdminListen  string
	TLS          mtls.Files
	Redis        redisconn.Options
	Store        dynamo.StoreOptions
	Log          logging.Options
	Hostnames    hostname.Policy

	Secrets SecretsConfig
	// WatchLogLength is roughly how many changes the change stream keeps for watchers
	// that resume (Redis).
	WatchLogLength int64
	// WatchLogRetention is how long the change log keeps changes (DynamoDB).
	WatchLogRetention time.Duration
	// WatchPollInterval is how often each replica reads new changes (DynamoDB).
	WatchPollInterval time.Duration
}

// SecretsConfig chooses and configures the private-key backend and its cache.
type SecretsConfig struct {
	Backend string // local or aws

	KEKFile   string
	KEKCreate bool
	KEKRewrap bool

	AWSPrefix   string
	AWSEndpoint string

	CacheSize int
	CacheTTL  time.Duration
}

// flagSet binds every setting of c to a flag.
func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("certstore", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9091", "gRPC listen address (read and write services)")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plaintext gRPC health-only listen address, for kubelet probes (empty: off)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9101", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	c.TLS.RegisterFlags(fs, "tls", "this server's")
	c.Redis.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	c.Hostnames.RegisterFlags(fs)

	s := &c.Secrets
	fs.StringVar(&s.Backend, "secrets-backend", "local", "where private keys are kept: local (AES-256-GCM envelopes under -kek-file, ciphertext in Redis) or aws (AWS Secrets Manager)")
	fs.StringVar(&s.KEKFile, "kek-file", "", "key-encryption keyring file of the local backend: lines <id>:<base64 32 bytes>, the first one current")
	fs.BoolVar(&s.KEKCreate, "kek-create", false, "create -kek-file with one fresh KEK if it does not exist (local runs and tests)")
	fs.BoolVar(&s.KEKRewrap, "kek-rewrap", false, "after start, re-wrap every private key not yet under the current KEK (after a rotation), then log the result")
	fs.StringVar(&s.AWSPrefix, "aws-secret-prefix", "portico/certstore/", "name prefix of the AWS Secrets Manager secrets (one secret per certificate key)")
	fs.StringVar(&s.AWSEndpoint, "aws-endpoint", "", "AWS Secrets Manager endpoint URL override (empty: the standard AWS configuration decides)")
	fs.IntVar(&s.CacheSize, "key-cache-size", 100000, "most decrypted private keys held in memory")
	fs.DurationVar(&s.CacheTTL, "key-cache-ttl", 10*time.Minute, "how long a decrypted private key is held in memory after it was read")
	fs.Int64Var(&c.WatchLogLength, "watch-log-length", 100000, "about how many changes the Redis change stream keeps, so reconnecting watchers can resume")
	fs.DurationVar(&c.WatchLogRetention, "watch-log-retention", 24*time.Hour, "how long the DynamoDB change log keeps changes, so reconnecting watchers can resume (-store dynamodb)")
	fs.DurationVar(&c.WatchPollInterval, "watch-poll-interval", 250*time.Millisecond, "how often each replica reads new changes from the DynamoDB change log (-store dynamodb); Watch delivers within about this")
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("listen", c.Listen)
	p.CheckOptionalListen("health-listen", c.HealthListen)
	p.CheckListen("admin-listen", c.AdminListen)
	if err := c.TLS.Check(); err != nil {
		p.Addf("tls-cert", "%v", err)
	}
	if !c.TLS.Enabled() && !config.IsLoopback(c.Listen) {
		p.Addf("listen", "%q is not loopback; plaintext mode binds to loopback only (set -tls-cert, -tls-key, -tls-ca)", c.Listen)
	}
	c.Redis.Validate(&p)
	c.Store.Validate(&p)
	s := c.Secrets
	p.CheckOneOf("secrets-backend", s.Backend, "local", "aws")
	switch s.Backend {
	case "local":
		if s.KEKFile == "" {
			p.Addf("kek-file", "is required with -secrets-backend local (create one with `certstore kek create -kek-file FILE` or add -kek-create)")
		}
	case "aws":
		if s.KEKRewrap {
			p.Addf("kek-rewrap", "applies to -secrets-backend local only")
		}
		if s.AWSPrefix == "" {
			p.Addf("aws-secret-prefix", "is required with -secrets-backend aws")
		}
	}
	if s.CacheSize < 1 {
		p.Addf("key-cache-size", "must be at least 1")
	}
	if s.CacheTTL <= 0 {
		p.Addf("key-cache-ttl", "must be positive")
	}
	if c.WatchLogLength < 1000 {
		p.Addf("watch-log-length", "must be at least 1000")
	}
	if c.WatchLogRetention < 2*time.Hour {
		p.Addf("watch-log-retention", "%v is under 2h: a watcher must be able to resume for more than the hour the log keeps as a margin", c.WatchLogRetention)
	}
	if c.WatchPollInterval < 10*time.Millisecond || c.WatchPollInterval > time.Second {
		p.Addf("watch-poll-interval", "%v is outside 10ms..1s (Watch delivers within a second)", c.WatchPollInterval)
	}
	return p.Err()
}

// parseConfig reads and validates the configuration.
func parseConfig(args []string) (Config, error) {
	var c Config
	if err := config.Parse(c.flagSet(), args); err != nil {
		return c, err
	}
	return c, c.validate()
}
