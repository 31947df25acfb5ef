// Command demo is `make demo`: the walkthrough of a new user against the system that
// `make run` started, reading the addresses and the admin key that make run wrote to
// its run directory (.run/local.env).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/portico-dev/portico/examples/walkthrough"
)

func main() {
	runDir := flag.String("run-dir", ".run", "the directory make run writes (its local.env says where everything is)")
	hostname := flag.String("hostname", "shop.example.com", "the domain to claim")
	flag.Parse()

	env, err := readEnv(filepath.Join(*runDir, "local.env"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\nIs `make run` running in another shell?\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err = walkthrough.Run(ctx, walkthrough.Config{
		ControlAPI:    "http://" + env["CONTROLAPI_HTTP"],
		AdminKey:      env["ADMIN_KEY"],
		DNSManagement: "http://" + env["DNS_MANAGEMENT"],
		GatewayHTTPS:  env["GATEWAY_HTTPS"],
		RootFile:      env["ACME_ROOT"],
		Hostname:      *hostname,
		ActiveTimeout: 3 * time.Minute,
		UseCurl:       true,
	}, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\nThe services' logs are in %s\n", err, filepath.Join(*runDir, "logs"))
		os.Exit(1)
	}
}

// readEnv reads KEY=VALUE lines.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[strings.TrimPrefix(k, "export ")] = v
		}
	}
	return env, sc.Err()
}
