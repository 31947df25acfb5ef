package main

import (
	"flag"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/redisconn"
)

// Config is the notary's configuration.
type Config struct {
	Listen       string
	HealthListen string
	AdminListen  string
	HTTPListen   string
	TLS          mtls.Files
	Certstore    grpcclient.Target
	Redis        redisconn.Options
	Log          logging.Options
}

func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("notary", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9092", "gRPC listen address (NotaryService, for controlapi)")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plaintext gRPC health-only listen address, for kubelet probes (empty: off)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9102", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8081", "HTTP listen address for /.well-known/acme-challenge/ and /.well-known/pki-validation/, reached through the gateway")
	c.TLS.RegisterFlags(fs, "tls", "this server's")
	c.Certstore.RegisterFlags(fs, "certstore", "127.0.0.1:9091")
	c.Redis.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("listen", c.Listen)
	p.CheckOptionalListen("health-listen", c.HealthListen)
	p.CheckListen("admin-listen", c.AdminListen)
	p.CheckListen("http-listen", c.HTTPListen)
	if err := c.TLS.Check(); err != nil {
		p.Addf("tls-cert", "%v", err)
	}
	if !c.TLS.Enabled() && !config.IsLoopback(c.Listen) {
		p.Addf("listen", "%q is not loopback; plaintext mode binds to loopback only (set -tls-cert, -tls-key, -tls-ca)", c.Listen)
	}
	c.Certstore.Validate(&p, "certstore")
	c.Redis.Validate(&p)
	return p.Err()
}

func parseConfig(args []string) (Config, error) {
	var c Config
	if err := config.Parse(c.flagSet(), args); err != nil {
		return c, err
	}
	return c, c.validate()
}
