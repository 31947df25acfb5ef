// Command runlocal is `make run`: the whole of Portico on one machine, as processes on
// loopback. It starts Redis (unless one already answers), or with -store dynamodb
// (`make run PORTICO_STORE=dynamodb`) dynalite in its place, a local DNS server
// (pebble-challtestsrv), a local ACME CA (Pebble) that validates HTTP-01 through the
// gateway's plain-HTTP port, certstore, the notary, controlapi, the gateway and an
// example upstream; writes what a user needs (admin key, addresses, the CA's root) into
// its run directory; and on Ctrl-C stops everything it started, and only that.
//
// Every address is a flag; the defaults are the documented local ports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// addrs are where everything listens.
type addrs struct {
	Redis, DNS, DNSManagement, ACME, ACMEManagement        string
	Certstore, CertstoreAdmin                              string
	Notary, NotaryAdmin, NotaryHTTP                        string
	ControlAPIGRPC, ControlAPIHTTP, ControlAPIAdmin        string
	GatewayHTTP, GatewayHTTPS, GatewayAdmin, GatewayHealth string
	Upstream                                               string
	DynamoDB                                               string
}

// The stores -store chooses between.
const (
	storeRedis    = "redis"
	storeDynamoDB = "dynamodb"
)

type options struct {
	addrs
	Dir       string
	Bin       string
	KeyPrefix string
	Store     string
	Dynalite  string
}

func main() {
	var o options
	flag.StringVar(&o.Dir, "dir", ".run", "run directory: logs, keys, the CA's root, local.env")
	flag.StringVar(&o.Bin, "bin", "bin", "directory of the portico-* binaries, pebble and pebble-challtestsrv")
	flag.StringVar(&o.KeyPrefix, "redis-key-prefix", "portico-local", "prefix of Portico's keys in Redis (and of its tables in DynamoDB)")
	flag.StringVar(&o.Store, "store", storeRedis, "where the services keep their state: redis, or dynamodb (dynalite is started instead of Redis)")
	flag.StringVar(&o.DynamoDB, "dynamodb", "127.0.0.1:4567", "dynalite's address (-store dynamodb)")
	flag.StringVar(&o.Dynalite, "dynalite", "", "the script that runs dynalite (default: <bin>/dynalite/run.js, as `make dynalite` installs it)")
	flag.StringVar(&o.Redis, "redis", "127.0.0.1:6379", "Redis address (one is started if none answers)")
	flag.StringVar(&o.DNS, "dns", "127.0.0.1:8053", "local DNS server")
	flag.StringVar(&o.DNSManagement, "dns-management", "127.0.0.1:8055", "local DNS server's management API")
	flag.StringVar(&o.ACME, "acme", "127.0.0.1:14000", "ACME CA (Pebble) API")
	flag.StringVar(&o.ACMEManagement, "acme-management", "127.0.0.1:15000", "Pebble's management API")
	flag.StringVar(&o.Certstore, "certstore", "127.0.0.1:9091", "certstore gRPC")
	flag.StringVar(&o.CertstoreAdmin, "certstore-admin", "127.0.0.1:9101", "certstore admin HTTP")
	flag.StringVar(&o.Notary, "notary", "127.0.0.1:9092", "notary gRPC")
	flag.StringVar(&o.NotaryAdmin, "notary-admin", "127.0.0.1:9102", "notary admin HTTP")
	flag.StringVar(&o.NotaryHTTP, "notary-http", "127.0.0.1:8081", "notary's challenge HTTP listener")
	flag.StringVar(&o.ControlAPIGRPC, "controlapi-grpc", "127.0.0.1:9090", "control API gRPC")
	flag.StringVar(&o.ControlAPIHTTP, "controlapi-http", "127.0.0.1:8080", "control API JSON")
	flag.StringVar(&o.ControlAPIAdmin, "controlapi-admin", "127.0.0.1:9103", "controlapi admin HTTP")
	flag.StringVar(&o.GatewayHTTP, "gateway-http", "127.0.0.1:8000", "gateway plain HTTP (ACME HTTP-01 arrives here)")
	flag.StringVar(&o.GatewayHTTPS, "gateway-https", "127.0.0.1:8443", "gateway HTTPS")
	flag.StringVar(&o.GatewayAdmin, "gateway-admin", "127.0.0.1:9100", "gateway admin HTTP")
	flag.StringVar(&o.GatewayHealth, "gateway-health", "127.0.0.1:9104", "gateway gRPC health")
	flag.StringVar(&o.Upstream, "upstream", "127.0.0.1:9000", "example upstream")
	flag.Parse()

	stopWithParent()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "\nmake run: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	var err error
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return err
	}
	if o.Bin, err = filepath.Abs(o.Bin); err != nil {
		return err
	}
	if o.Dynalite == "" {
		o.Dynalite = filepath.Join(o.Bin, "dynalite", "run.js")
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "logs"), 0o755); err != nil {
		return err
	}
	adminKey, err := adminKey(o.Dir)
	if err != nil {
		return err
	}

	sup := newSupervisor(filepath.Join(o.Dir, "logs"))
	defer sup.stopAll()

	switch o.Store {
	case storeRedis:
		step("Redis")
		if err := startRedis(ctx, sup, o); err != nil {
			return err
		}
	case storeDynamoDB:
		step("dynalite (DynamoDB) in place of Redis")
		if err := startDynalite(ctx, sup, o); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-store %q: want %s or %s", o.Store, storeRedis, storeDynamoDB)
	}
	step("local DNS server and ACME CA")
	root, err := startACME(ctx, sup, o)
	if err != nil {
		return err
	}
	step("Portico")
	if err := startPortico(ctx, sup, o, root); err != nil {
		return err
	}
	if err := writeEnv(o, adminKey, root.rootFile); err != nil {
		return err
	}
	printSummary(o, adminKey, root.rootFile)

	select {
	case <-ctx.Done():
		fmt.Println("\nstopping everything make run started…")
		return nil
	case p := <-sup.exited:
		return fmt.Errorf("%s exited unexpectedly; see %s", p.name, p.logPath)
	}
}

// storeSummary says where the state is kept.
func storeSummary(o options) string {
	if o.Store == storeDynamoDB {
		return fmt.Sprintf("DynamoDB (dynalite, in memory) at http://%s, tables %s-*", o.DynamoDB, o.KeyPrefix)
	}
	return fmt.Sprintf("Redis at %s, keys under %q", o.Redis, o.KeyPrefix)
}

func step(s string) { fmt.Printf("==> starting %s\n", s) }

// bin is the path of a binary in the bin directory.
func (o options) bin(name string) string { return filepath.Join(o.Bin, name) }

func startPortico(ctx context.Context, sup *supervisor, o options, acme acmeFiles) error {
	storage, env := storageArgs(o)
	console := []string{"-log-format", "console"}
	host := func(addr string) string { h, _, _ := strings.Cut(addr, ":"); return h }
	_, httpsPort, _ := strings.Cut(o.GatewayHTTPS, ":")

	services := []struct {
		name, bin, ready string
		args             []string
	}{
		{"upstream", "portico-example-upstream", "http://" + o.Upstream + "/", []string{"-listen", o.Upstream}},
		{"certstore", "portico-certstore", "http://" + o.CertstoreAdmin + "/readyz", concat(
			[]string{"-listen", o.Certstore, "-admin-listen", o.CertstoreAdmin,
				"-kek-file", filepath.Join(o.Dir, "kek"), "-kek-create"}, storage, console)},
		{"notary", "portico-notary", "http://" + o.NotaryAdmin + "/readyz", concat(
			[]string{"-listen", o.Notary, "-admin-listen", o.NotaryAdmin, "-http-listen", o.NotaryHTTP,
				"-certstore-addr", o.Certstore,
				"-acme-directory", "https://" + o.ACME + "/dir", "-acme-ca-file", acme.apiCAFile,
				"-acme-account-key-file", filepath.Join(o.Dir, "acme-account-key.pem"), "-acme-profile", "default",
				"-dns-resolvers", o.DNS, "-edge-addresses", host(o.GatewayHTTPS), "-caa-identities", "pebble.letsencrypt.org",
				"-verify-interval", "5s"}, storage, console)},
		{"controlapi", "portico-controlapi", "http://" + o.ControlAPIAdmin + "/readyz", concat(
			[]string{"-listen", o.ControlAPIGRPC, "-http-listen", o.ControlAPIHTTP, "-admin-listen", o.ControlAPIAdmin,
				"-notary-addr", o.Notary, "-certstore-addr", o.Certstore,
				"-admin-key-file", filepath.Join(o.Dir, "admin-key"), "-edge-addresses", host(o.GatewayHTTPS)}, storage, console)},
		{"gateway", "portico-gateway", "http://" + o.GatewayAdmin + "/readyz", concat(
			[]string{"-http-listen", o.GatewayHTTP, "-https-listen", o.GatewayHTTPS, "-admin-listen", o.GatewayAdmin,
				"-health-listen", o.GatewayHealth, "-certstore-addr", o.Certstore, "-notary-http-addr", o.NotaryHTTP,
				"-upstream", o.Upstream, "-redirect-https-port", httpsPort}, console)},
	}
	for _, s := range services {
		var penv []string
		if s.name != "upstream" && s.name != "gateway" {
			penv = env
		}
		p, err := sup.start(s.name, o.bin(s.bin), penv, s.args...)
		if err != nil {
			return err
		}
		if err := waitHTTP(ctx, p, s.ready, 30*time.Second); err != nil {
			return err
		}
		fmt.Printf("    %-10s ready\n", s.name)
	}
	return nil
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// writeEnv records where everything is for `make demo` and for shells
// (`source .run/local.env`).
func writeEnv(o options, adminKey, rootFile string) error {
	lines := []string{
		"# Written by make run; `make demo` reads it. Source it in a shell to use the same names.",
		"ADMIN_KEY=" + adminKey,
		"CONTROLAPI_HTTP=" + o.ControlAPIHTTP,
		"CONTROLAPI_GRPC=" + o.ControlAPIGRPC,
		"GATEWAY_HTTP=" + o.GatewayHTTP,
		"GATEWAY_HTTPS=" + o.GatewayHTTPS,
		"DNS=" + o.DNS,
		"DNS_MANAGEMENT=" + o.DNSManagement,
		"ACME_DIRECTORY=https://" + o.ACME + "/dir",
		"ACME_ROOT=" + rootFile,
		"LOGS=" + filepath.Join(o.Dir, "logs"),
	}
	return os.WriteFile(filepath.Join(o.Dir, "local.env"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

func printSummary(o options, adminKey, rootFile string) {
	fmt.Printf(`
Portico is running.

  admin key         %s
  control API       http://%s  (JSON; OpenAPI at /openapi.json)   gRPC %s
  gateway           http://%s   https://%s   admin http://%s
  ACME CA (Pebble)  https://%s/dir   root certificate: %s
  DNS server        %s (UDP/TCP)   management http://%s
  example upstream  http://%s
  logs              %s
  store             %s

Next, in another shell:
  make demo                      # the walkthrough: tenant, domain, DNS records, ACTIVE, HTTPS, delete
  source %s   # ADMIN_KEY and the addresses, to try the README's steps by hand

Ctrl-C stops everything make run started.
`, adminKey, o.ControlAPIHTTP, o.ControlAPIGRPC, o.GatewayHTTP, o.GatewayHTTPS, o.GatewayAdmin,
		o.ACME, rootFile, o.DNS, o.DNSManagement, o.Upstream, filepath.Join(o.Dir, "logs"), storeSummary(o),
		filepath.Join(o.Dir, "local.env"))
}
