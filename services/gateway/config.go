package main

import (
	"flag"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/grpcclient"
	"github.com/portico-dev/portico/pkg/logging"
)

// Config is the gateway's configuration.
type Config struct {
	HTTPListen   string
	HTTPSListen  string
	AdminListen  string
	HealthListen string
	Certstore    grpcclient.Target
	Log          logging.Options
}

func (c *Config) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8000", "plain HTTP listen address (port 80 in production)")
	fs.StringVar(&c.HTTPSListen, "https-listen", "127.0.0.1:8443", "HTTPS listen address (port 443 in production)")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9100", "HTTP admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	fs.StringVar(&c.HealthListen, "health-listen", "127.0.0.1:9104", "plaintext gRPC health listen address, for kubelet probes")
	c.Certstore.RegisterFlags(fs, "certstore", "127.0.0.1:9091")
	c.Log.RegisterFlags(fs)
	return fs
}

func (c *Config) validate() error {
	var p config.Problems
	p.CheckListen("http-listen", c.HTTPListen)
	p.CheckListen("https-listen", c.HTTPSListen)
	p.CheckListen("admin-listen", c.AdminListen)
	p.CheckListen("health-listen", c.HealthListen)
	c.Certstore.Validate(&p, "certstore")
	return p.Err()
}

func parseConfig(args []string) (Config, error) {
	var c Config
	if err := config.Parse(c.flagSet(), args); err != nil {
		return c, err
	}
	return c, c.validate()
}
