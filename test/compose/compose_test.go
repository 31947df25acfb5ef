// Package compose checks docker-compose.yml and the Dockerfiles without a Docker
// engine: the compose file is loaded with the Compose Specification's own Go loader and
// checked service by service (images or builds, published ports, dependencies, the
// private network's fixed addresses, mTLS identities, and that every flag given to a
// Portico service is one it knows), and each Dockerfile's build is replayed from exactly
// the files it copies.
package compose

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func load(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	root := repoRoot()
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}
	return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("portico", true)
		o.SkipConsistencyCheck = false
	})
}

func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, map[string]string{"PORTICO_ADMIN_KEY": strings.Repeat("k", 40)})
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func TestAdminKeyIsRequired(t *testing.T) {
	_, err := load(t, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "PORTICO_ADMIN_KEY") {
		t.Fatalf("loading without PORTICO_ADMIN_KEY: %v, want an error naming it", err)
	}
}

func TestServicesAndDependencies(t *testing.T) {
	p := project(t)
	want := map[string]map[string]string{ // service -> dependency -> condition
		"certs":      {},
		"redis":      {},
		"dns":        {},
		"pebble":     {"certs": types.ServiceConditionCompletedSuccessfully, "dns": types.ServiceConditionStarted},
		"certstore":  {"certs": types.ServiceConditionCompletedSuccessfully, "redis": types.ServiceConditionHealthy},
		"notary":     {"certs": types.ServiceConditionCompletedSuccessfully, "redis": types.ServiceConditionHealthy, "certstore": types.ServiceConditionStarted, "pebble": types.ServiceConditionStarted},
		"controlapi": {"certs": types.ServiceConditionCompletedSuccessfully, "redis": types.ServiceConditionHealthy, "notary": types.ServiceConditionStarted, "certstore": types.ServiceConditionStarted},
		"gateway":    {"certs": types.ServiceConditionCompletedSuccessfully, "certstore": types.ServiceConditionStarted, "notary": types.ServiceConditionStarted, "upstream": types.ServiceConditionStarted},
		"upstream":   {},
	}
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	var wantNames []string
	for name := range want {
		wantNames = append(wantNames, name)
	}
	sort.Strings(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("services %v, want %v", names, wantNames)
	}
	for name, deps := range want {
		svc := p.Services[name]
		got := map[string]string{}
		for dep, cfg := range svc.DependsOn {
			got[dep] = cfg.Condition
		}
		if len(got) != len(deps) {
			t.Errorf("%s depends on %v, want %v", name, got, deps)
		}
		for dep, cond := range deps {
			if got[dep] != cond {
				t.Errorf("%s -> %s: condition %q, want %q", name, dep, got[dep], cond)
			}
		}
	}
	if p.Services["redis"].HealthCheck == nil {
		t.Error("redis has no health check, but others wait for service_healthy")
	}
}

func TestImagesAndBuilds(t *testing.T) {
	p := project(t)
	builds := map[string]string{
		"certs": "examples/Dockerfile", "upstream": "examples/Dockerfile",
		"certstore": "services/certstore/Dockerfile", "notary": "services/notary/Dockerfile",
		"controlapi": "services/controlapi/Dockerfile", "gateway": "services/gateway/Dockerfile",
	}
	images := map[string]string{"redis": "redis:", "dns": "ghcr.io/letsencrypt/pebble-challtestsrv:", "pebble": "ghcr.io/letsencrypt/pebble:"}
	for name, svc := range p.Services {
		if df, ok := builds[name]; ok {
			if svc.Build == nil || svc.Build.Context != repoRoot() && filepath.Clean(svc.Build.Context) != filepath.Clean(repoRoot()) {
				t.Errorf("%s: build context %+v, want the repository root", name, svc.Build)
				continue
			}
			if svc.Build.Dockerfile != df {
				t.Errorf("%s: Dockerfile %q, want %q", name, svc.Build.Dockerfile, df)
			}
			if _, err := os.Stat(filepath.Join(repoRoot(), df)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		prefix, ok := images[name]
		if !ok || !strings.HasPrefix(svc.Image, prefix) || strings.HasSuffix(svc.Image, ":latest") {
			t.Errorf("%s: image %q, want a pinned %s... image", name, svc.Image, prefix)
		}
	}
}

func TestPublishedPorts(t *testing.T) {
	p := project(t)
	want := map[string][]string{ // service -> host:published->target
		"gateway":    {"127.0.0.1:8000->8080", "127.0.0.1:8443->8443", "127.0.0.1:9100->9100"},
		"controlapi": {"127.0.0.1:8080->8080", "127.0.0.1:9090->9090"},
		"dns":        {"127.0.0.1:8055->8055"},
		"pebble":     {"127.0.0.1:15000->15000"},
	}
	for name, svc := range p.Services {
		var got []string
		for _, port := range svc.Ports {
			got = append(got, port.HostIP+":"+port.Published+"->"+strconv.Itoa(int(port.Target)))
		}
		sort.Strings(got)
		w := want[name]
		sort.Strings(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s publishes %v, want %v (only on loopback)", name, got, w)
		}
	}
}

// flags parses "-name=value" and "-name" arguments into name -> value.
func flags(cmd []string) map[string]string {
	out := map[string]string{}
	for _, a := range cmd {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		out[name] = value
	}
	return out
}

// TestFlagsAreRealSettings runs each service's -print-config-reference and checks every
// flag compose passes is one the binary defines (they refuse unknown flags at start).
func TestFlagsAreRealSettings(t *testing.T) {
	p := project(t)
	for _, name := range []string{"certstore", "notary", "controlapi", "gateway"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("go", "run", ".", "-print-config-reference")
			cmd.Dir = filepath.Join(repoRoot(), "services", name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s -print-config-reference: %v", name, err)
			}
			known := map[string]bool{}
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if f, ok := strings.CutPrefix(sc.Text(), "| `-"); ok {
					known[f[:strings.Index(f, "`")]] = true
				}
			}
			for f := range flags(p.Services[name].Command) {
				if !known[f] {
					t.Errorf("compose passes -%s, which %s does not define", f, name)
				}
			}
			for k := range p.Services[name].Environment {
				flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "PORTICO_")), "_", "-")
				if strings.HasPrefix(k, "PORTICO_") && !known[flag] {
					t.Errorf("compose sets %s, which %s does not read", k, name)
				}
			}
		})
	}
}

// TestNetworkAndIdentities checks that the fixed addresses agree (the DNS server's
// default answer and the edge addresses are the gateway's; the resolvers are the DNS
// server's) and that every mTLS client presents its own service's identity.
func TestNetworkAndIdentities(t *testing.T) {
	p := project(t)
	addr := func(svc string) string {
		for _, n := range p.Services[svc].Networks {
			if n != nil && n.Ipv4Address != "" {
				return n.Ipv4Address
			}
		}
		t.Fatalf("%s has no fixed address", svc)
		return ""
	}
	gw, dns := addr("gateway"), addr("dns")
	dnsCmd := strings.Join(p.Services["dns"].Command, " ")
	if !strings.Contains(dnsCmd, "-defaultIPv4 "+gw) {
		t.Errorf("the DNS server's default answer is not the gateway's address %s: %s", gw, dnsCmd)
	}
	for _, svc := range []string{"notary", "controlapi"} {
		if got := flags(p.Services[svc].Command)["edge-addresses"]; got != gw {
			t.Errorf("%s -edge-addresses=%s, want the gateway's %s", svc, got, gw)
		}
	}
	if got := flags(p.Services["notary"].Command)["dns-resolvers"]; got != dns+":8053" {
		t.Errorf("notary -dns-resolvers=%s, want %s:8053", got, dns)
	}
	if !strings.Contains(strings.Join(p.Services["pebble"].Command, " "), "-dnsserver "+dns+":8053") {
		t.Errorf("pebble does not resolve through the DNS server %s", dns)
	}
	for _, svc := range []string{"certstore", "notary", "controlapi", "gateway"} {
		for f, v := range flags(p.Services[svc].Command) {
			if strings.HasSuffix(f, "tls-cert") && v != "/certs/"+svc+".pem" {
				t.Errorf("%s -%s=%s: a service must present its own identity /certs/%s.pem", svc, f, v, svc)
			}
			if strings.HasSuffix(f, "tls-key") && v != "/certs/"+svc+"-key.pem" {
				t.Errorf("%s -%s=%s", svc, f, v)
			}
		}
	}
}

// TestDockerfilesBuildFromWhatTheyCopy replays each Dockerfile's build stage: copy
// exactly the paths its COPY lines name into an empty directory, then build as it does
// (GOWORK=off, CGO off). A module that needs something the Dockerfile does not copy fails.
func TestDockerfilesBuildFromWhatTheyCopy(t *testing.T) {
	builds := map[string]string{
		"services/certstore/Dockerfile":  "services/certstore",
		"services/notary/Dockerfile":     "services/notary",
		"services/controlapi/Dockerfile": "services/controlapi",
		"services/gateway/Dockerfile":    "services/gateway",
		"examples/Dockerfile":            "examples",
	}
	for df, dir := range builds {
		t.Run(df, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repoRoot(), df))
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			copied := 0
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--") {
					continue
				}
				for _, src := range fields[1 : len(fields)-1] {
					copyTree(t, filepath.Join(repoRoot(), src), filepath.Join(tmp, src))
					copied++
				}
			}
			if copied == 0 {
				t.Fatal("no COPY lines found")
			}
			cmd := exec.Command("go", "build", "-trimpath", "-o", os.DevNull, "./...")
			cmd.Dir = filepath.Join(tmp, dir)
			cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build from the Dockerfile's files only: %v\n%s", err, out)
			}
		})
	}
}

// copyTree copies a file or a directory (skipping tests' temp files and binaries).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
