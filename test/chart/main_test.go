package chart_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/portico-dev/portico/test/chart"
)

// valueSet is one way of installing the chart: the defaults, or a file of
// charts/portico/ci (the chart-testing convention), each rendered and checked.
type valueSet struct {
	name string
	file string // relative to the chart; empty for the defaults
}

func (v valueSet) args() []string {
	if v.file == "" {
		return nil
	}
	return []string{"-f", filepath.Join(chart.ChartDir(), v.file)}
}

// valueSets discovers charts/portico/ci/*-values.yaml, so that a new file is checked
// without being listed here.
func valueSets(t *testing.T) []valueSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chart.ChartDir(), "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	sets := []valueSet{{name: "defaults"}}
	for _, f := range files {
		base := filepath.Base(f)
		sets = append(sets, valueSet{name: strings.TrimSuffix(base, "-values.yaml"), file: filepath.Join("ci", base)})
	}
	return sets
}

// set returns the value set of that name, failing the test when it does not exist.
func set(t *testing.T, name string) valueSet {
	t.Helper()
	for _, s := range valueSets(t) {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no value set %q (charts/portico/ci/%s-values.yaml)", name, name)
	return valueSet{}
}

var renders sync.Map // value set name → *renderResult

type renderResult struct {
	once sync.Once
	m    *chart.Manifest
	err  error
}

// render renders and strictly decodes a value set once per test binary.
func render(t *testing.T, v valueSet) *chart.Manifest {
	t.Helper()
	r, _ := renders.LoadOrStore(v.name, &renderResult{})
	res := r.(*renderResult)
	res.once.Do(func() { res.m, res.err = chart.Render(context.Background(), v.args()...) })
	if res.err != nil {
		t.Fatalf("value set %s: %v", v.name, res.err)
	}
	return res.m
}

// binaries holds the four service binaries, built once per test binary.
var binaries struct {
	once sync.Once
	dir  string
	path map[string]string
	err  error
}

func serviceBinary(t *testing.T, component string) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "portico-chart-bin-")
		if binaries.err != nil {
			return
		}
		binaries.path = map[string]string{}
		for _, c := range chart.Components {
			p, err := chart.Build(context.Background(), c, binaries.dir)
			if err != nil {
				binaries.err = err
				return
			}
			binaries.path[c] = p
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.path[component]
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// TestValueSetsCoverTheIssue: the issue asks for at least these four renderings.
func TestValueSetsCoverTheIssue(t *testing.T) {
	for _, name := range []string{"defaults", "deployment-loadbalancer", "aws", "cert-manager"} {
		render(t, set(t, name))
	}
}

func TestLintStrict(t *testing.T) {
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", "--kube-version", chart.KubeVersion, chart.ChartDir()}, v.args()...)
			out, err := chart.Run(t.Context(), args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), "0 chart(s) failed") {
				t.Fatalf("helm lint --strict:\n%s", out)
			}
		})
	}
}
