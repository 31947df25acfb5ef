// Package config reads a service's configuration from, in order of precedence, its
// command-line flags, PORTICO_* environment variables and an optional YAML file given by
// -config (flag names as keys). It is strict: an unknown key in the file or an unknown
// PORTICO_* variable is an error naming it, and every service validates the values it
// got before it starts (see Problems).
//
// A flag `redis-addr` is read from the environment as PORTICO_REDIS_ADDR and from the
// file as `redis-addr:`.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// EnvPrefix starts every environment variable Portico reads.
const EnvPrefix = "PORTICO"

// ConfigFlag is the flag (and PORTICO_CONFIG variable) that names a YAML file.
const ConfigFlag = "config"

// ReferenceFlag makes Parse print the settings as Markdown (see Reference) to stdout and
// return flag.ErrHelp; `make docs` builds docs/configuration.md with it.
const ReferenceFlag = "print-config-reference"

// Parse fills fs from args, the environment and the config file. fs must not define
// ConfigFlag itself; Parse adds it.
func Parse(fs *flag.FlagSet, args []string) error {
	fs.String(ConfigFlag, "", "YAML file of settings, keyed by flag name (flags and PORTICO_* variables win)")
	if len(args) == 1 && strings.TrimLeft(args[0], "-") == ReferenceFlag {
		fmt.Print(Reference(fs))
		return flag.ErrHelp
	}
	if err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix(EnvPrefix),
		ff.WithConfigFileFlag(ConfigFlag),
		ff.WithConfigFileParser(ffyaml.Parser),
	); err != nil {
		return err
	}
	if len(fs.Args()) > 0 {
		return fmt.Errorf("unexpected arguments %q: settings are flags (-name value)", fs.Args())
	}
	return unknownEnv(fs, os.Environ())
}

// EnvName is the environment variable that sets a flag.
func EnvName(flagName string) string {
	return EnvPrefix + "_" + strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(strings.ToUpper(flagName))
}

// unknownEnv refuses PORTICO_* variables that name no flag: a typo would otherwise be
// ignored silently and the service would run with a default.
func unknownEnv(fs *flag.FlagSet, environ []string) error {
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[EnvName(f.Name)] = true })
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix+"_") && !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("unknown environment variables %s: %s reads no such setting (see -help)", strings.Join(unknown, ", "), fs.Name())
}

// Problems collects validation failures, each naming its flag, and reports them together.
type Problems []error

// Addf records a problem with a flag.
func (p *Problems) Addf(flagName, format string, args ...any) {
	*p = append(*p, fmt.Errorf("-%s (%s): %s", flagName, EnvName(flagName), fmt.Sprintf(format, args...)))
}

// Err returns nil or all problems joined.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  %w", errors.Join(p...))
}

// CheckListen checks a host:port listen address.
func (p *Problems) CheckListen(flagName, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.Addf(flagName, "%q is not host:port: %v", addr, err)
	}
}

// CheckOptionalListen checks a listen address that may be empty (switched off).
func (p *Problems) CheckOptionalListen(flagName, addr string) {
	if addr != "" {
		p.CheckListen(flagName, addr)
	}
}

// CheckRequired records a problem when value is empty.
func (p *Problems) CheckRequired(flagName, value string) {
	if strings.TrimSpace(value) == "" {
		p.Addf(flagName, "is required")
	}
}

// CheckOneOf records a problem when value is not one of allowed.
func (p *Problems) CheckOneOf(flagName, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.Addf(flagName, "%q is not one of %s", value, strings.Join(allowed, ", "))
}

// IsLoopback reports whether a host:port address binds only to the loopback interface.
// A host name other than "localhost" is not trusted to be loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Reference lists a flag set's settings as Markdown table rows (flag, variable, default,
// meaning), for the configuration reference in the docs.
func Reference(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `-%s` | `%s` | %s | %s |\n", f.Name, EnvName(f.Name), def, strings.ReplaceAll(f.Usage, "|", `\|`))
	})
	return b.String()
}

// List splits a comma-separated setting into its items, trimmed, without empty ones.
func List(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
