package main

import (
	"flag"

	"github.com/portico-dev/portico/pkg/config"
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
	Log          logging.Options
}

// flagSet binds every setting of c to a flag.
func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("certstore", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9091", "gRPC listen address (read and write services)")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plaintext gRPC health-only listen address, for kubelet probes (empty: off)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9101", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	c.TLS.RegisterFlags(fs, "tls", "this server's")
	c.Redis.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
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
