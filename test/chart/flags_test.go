package chart_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portico-dev/portico/test/chart"
)

var settingsCache sync.Map // component → []chart.Setting

// settingsOf returns a service's real settings, from its binary's -print-config-reference.
func settingsOf(t *testing.T, component string) []chart.Setting {
	t.Helper()
	if s, ok := settingsCache.Load(component); ok {
		return s.([]chart.Setting)
	}
	s, err := chart.Settings(t.Context(), serviceBinary(t, component))
	if err != nil {
		t.Fatal(err)
	}
	settingsCache.Store(component, s)
	return s
}

// TestConfigKeysAreRealFlags: the services refuse an unknown config key or PORTICO_*
// variable, so every key the chart writes into a config file must be one of that
// service's flags and every PORTICO_* variable it sets one of its variables.
func TestConfigKeysAreRealFlags(t *testing.T) {
	for _, v := range valueSets(t) {
		m := render(t, v)
		for _, w := range m.Workloads() {
			t.Run(v.name+"/"+w.Component, func(t *testing.T) {
				flags := map[string]bool{}
				envs := map[string]bool{}
				for _, s := range settingsOf(t, w.Component) {
					flags[s.Flag] = true
					envs[s.Env] = true
				}
				for key := range configOf(t, m, w.Component) {
					if !flags[key] {
						t.Errorf("config key %q: %s has no flag -%s (see docs/configuration.md)", key, w.Component, key)
					}
				}
				for _, e := range mainContainer(t, w).Env {
					if strings.HasPrefix(e.Name, "PORTICO_") && !envs[e.Name] {
						t.Errorf("environment variable %s: %s reads no such setting", e.Name, w.Component)
					}
				}
			})
		}
	}
}

// TestBinariesAcceptRenderedConfig runs each real service binary on its rendered config
// file and PORTICO_* environment, with one deliberately bad flag (-admin-listen) so that
// it stops after parsing and validating instead of serving. The only complaint must be
// that flag: an unknown key, a wrong type or a setting the service refuses in
// combination (plaintext off loopback, a partial mTLS set) would show up beside it.
func TestBinariesAcceptRenderedConfig(t *testing.T) {
	for _, v := range valueSets(t) {
		m := render(t, v)
		for _, w := range m.Workloads() {
			t.Run(v.name+"/"+w.Component, func(t *testing.T) {
				cm := m.ConfigMap(chart.ObjectName(w.Component))
				config := withFixtures(t, cm.Data["config.yaml"], generatedFiles(m))
				file := filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
					t.Fatal(err)
				}
				env := cleanEnv()
				for _, e := range mainContainer(t, w).Env {
					if !strings.HasPrefix(e.Name, "PORTICO_") {
						continue
					}
					val := e.Value
					if e.ValueFrom != nil {
						val = "from-a-secret" // the Secret's content is not the chart's to know
					}
					env = append(env, e.Name+"="+val)
				}
				cmd := exec.CommandContext(t.Context(), serviceBinary(t, w.Component), "-config", file, "-admin-listen", "not-an-address")
				cmd.Env = env
				var stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stderr, &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatalf("%s did not stop on a bad -admin-listen: %v\n%s", w.Component, err, stderr.String())
				}
				out := stderr.String()
				if !strings.Contains(out, "invalid configuration") || !strings.Contains(out, "-admin-listen (PORTICO_ADMIN_LISTEN)") {
					t.Fatalf("%s refused the rendered configuration before validating it:\n%s\nconfig.yaml:\n%s", w.Component, out, cm.Data["config.yaml"])
				}
				want := append([]string{"admin-listen"}, expectedProblems[v.name+"/"+w.Component]...)
				if problems := problemFlags(out); !slices.Equal(problems, want) {
					t.Fatalf("%s: problems with %v, want %v:\n%s\nconfig.yaml:\n%s", w.Component, problems, want, out, config)
				}
			})
		}
	}
}

// expectedProblems are the complaints, besides the deliberate one, that a value set
// should cause: the defaults name no edge, and controlapi must not invent one.
var expectedProblems = map[string][]string{
	"defaults/controlapi": {"edge-addresses"},
	"defaults/notary":     {"edge-addresses"},
}

// fixtureRoot is where the chart mounts files; withFixtures moves them into a temporary
// directory for a run outside a pod.
const fixtureRoot = "/etc/portico/"

// generatedFiles are the files the chart's own Secrets put into the pods, by file name:
// the generated KEK keyring and admin key, so the binaries check what the chart made.
func generatedFiles(m *chart.Manifest) map[string][]byte {
	files := map[string][]byte{}
	if s := m.Secret(chart.ObjectName("kek")); s != nil {
		files["keyring"] = s.Data["keyring"]
	}
	if s := m.Secret(chart.ObjectName("admin-key")); s != nil {
		files["admin-key"] = s.Data["admin-key"]
	}
	if s := m.Secret(chart.ObjectName("acme-account")); s != nil {
		files["account-key.pem"] = s.Data["account-key.pem"]
	}
	return files
}

// withFixtures rewrites the mounted-file paths of a config file into a temporary
// directory and creates files there: those the chart generates (generated, by file
// name), and otherwise files of the right kind (a certificate, a key, a KEK keyring, an
// admin key), as the operator's Secrets would provide them in the pod.
func withFixtures(t *testing.T, config string, generated map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, line := range strings.Split(config, "\n") {
		key, val, ok := strings.Cut(line, ": ")
		if ok && strings.HasPrefix(val, fixtureRoot) {
			path := filepath.Join(dir, strings.TrimPrefix(val, fixtureRoot))
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); os.IsNotExist(err) {
				content, ok := generated[filepath.Base(path)]
				if !ok {
					content = fixture(t, filepath.Base(path))
				}
				if err := os.WriteFile(path, content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			line = key + ": " + path
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// problemFlags lists the flags named by the lines of an "invalid configuration" error
// ("-name (PORTICO_NAME): ...").
func problemFlags(out string) []string {
	var flags []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		name, rest, ok := strings.Cut(line[1:], " (PORTICO_")
		if ok && strings.Contains(rest, "):") {
			flags = append(flags, name)
		}
	}
	return flags
}

// cleanEnv is the test's environment without PORTICO_* variables, which the services
// would refuse as unknown or take as settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTICO_") {
			env = append(env, kv)
		}
	}
	return env
}
