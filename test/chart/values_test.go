package chart_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/test/chart"
)

// values are the few chart values the tests compare the rendering with.
type values struct {
	Store string `json:"store"`
	Redis struct {
		Addr string `json:"addr"`
	} `json:"redis"`
	Metrics struct {
		Enabled bool `json:"enabled"`
	} `json:"metrics"`
	NetworkPolicy struct {
		GatewayUpstreamTo    []any   `json:"gatewayUpstreamTo"`
		GatewayUpstreamPorts []int32 `json:"gatewayUpstreamPorts"`
	} `json:"networkPolicy"`
	Certstore struct {
		SecretsBackend string `json:"secretsBackend"`
	} `json:"certstore"`
	MTLS struct {
		Mode        string `json:"mode"`
		CertManager struct {
			IssuerRef struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
			} `json:"issuerRef"`
		} `json:"certManager"`
	} `json:"mtls"`
	Notary struct {
		ACME struct {
			Directory string `json:"directory"`
		} `json:"acme"`
	} `json:"notary"`
	Edge struct {
		Addresses   []string `json:"addresses"`
		CNAMETarget string   `json:"cnameTarget"`
	} `json:"edge"`
}

// chartValues merges values.yaml with the value set's file, as helm does for maps.
func chartValues(t *testing.T, v valueSet) values {
	t.Helper()
	merged := readYAML(t, filepath.Join(chart.ChartDir(), "values.yaml"))
	if v.file != "" {
		merged = mergeValues(merged, readYAML(t, filepath.Join(chart.ChartDir(), v.file)))
	}
	b, err := json.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}
	var out values
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func mergeValues(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func redisPortOf(t *testing.T, v values) int32 {
	t.Helper()
	first, _, _ := strings.Cut(v.Redis.Addr, ",")
	_, p, err := net.SplitHostPort(first)
	if err != nil {
		t.Fatalf("redis.addr %q: %v", v.Redis.Addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func ptrIntStr(p int32) *intstr.IntOrString {
	v := intstr.FromInt32(p)
	return &v
}

func labelSet(l map[string]string) labels.Set { return labels.Set(l) }
