package main

import (
	"flag"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/redisconn"
)

// Config is controlapi's configuration.
type Config struct {
	Listen       string
	HTTPListen   string
	HealthListen string
	AdminListen  string
	Notary       grpcclient.Target
	Certstore    grpcclient.Target
	Redis        redisconn.Options
	Log          logging.Options
}

func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("controlapi", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9090", "gRPC listen address of the control API")
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8080", "JSON (grpc-gateway) listen address of the control API, with /openapi.json")
	fs.StringVar(&c.HealthListen, "health-listen", "", "plaintext gRPC health-only listen address, for kubelet probes (empty: off)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9103", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	c.Notary.RegisterFlags(fs, "notary", "127.0.0.1:9092")
	c.Certstore.RegisterFlags(fs, "certstore", "127.0.0.1:9091")
	c.Redis.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("listen", c.Listen)
	p.CheckListen("http-listen", c.HTTPListen)
	p.CheckOptionalListen("health-listen", c.HealthListen)
	p.CheckListen("admin-listen", c.AdminListen)
	c.Notary.Validate(&p, "notary")
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
