package chart_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/portico-dev/portico/test/chart"
)

// TestDecodeIsStrict: the decoding every other test relies on refuses a field Kubernetes
// does not know, a wrong type and an unknown kind.
func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name, doc, wantErr string
	}{
		{name: "unknown field", wantErr: "replica", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n"},
		{name: "wrong type", wantErr: "replicas", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n"},
		{name: "misplaced field", wantErr: "readOnlyRootFilesystem", doc: "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nreadOnlyRootFilesystem: true\n"},
		{name: "unknown kind", wantErr: "does not know", doc: "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"},
		{name: "duplicate key", wantErr: "name", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, name: y}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chart.Decode([]byte("---\n# Source: test\n" + tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decode error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
	m, err := chart.Decode([]byte("---\n# Source: x\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: b}\n---\n"))
	if err != nil || len(m.ConfigMaps) != 1 || m.ConfigMaps[0].Data["a"] != "b" {
		t.Fatalf("a valid ConfigMap: %v, %+v", err, m)
	}
}

// TestGeneratedSecrets: without supplied Secrets the chart generates the KEK keyring (in
// certstore's format, kept when the release is deleted) and the admin key; with supplied
// ones, or the aws backend, it generates none.
func TestGeneratedSecrets(t *testing.T) {
	kekName, adminName := chart.ObjectName("kek"), chart.ObjectName("admin-key")
	tests := []struct {
		set             string
		wantKEK         bool
		wantAdmin       bool
		wantKEKVolumeOf string // the Secret certstore mounts its keyring from; empty: none
	}{
		{set: "defaults", wantKEK: true, wantAdmin: true, wantKEKVolumeOf: kekName},
		{set: "aws", wantKEK: false, wantAdmin: false},
		{set: "cert-manager", wantKEK: false, wantAdmin: true, wantKEKVolumeOf: "portico-kek"},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			m := render(t, set(t, tc.set))
			kek := m.Secret(kekName)
			if (kek != nil) != tc.wantKEK {
				t.Fatalf("KEK Secret rendered: %v, want %v", kek != nil, tc.wantKEK)
			}
			if kek != nil {
				if kek.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Error("the KEK Secret is not kept on uninstall: deleting it loses every private key")
				}
				checkKeyring(t, string(kek.Data["keyring"]))
			}
			admin := m.Secret(adminName)
			if (admin != nil) != tc.wantAdmin {
				t.Fatalf("admin key Secret rendered: %v, want %v", admin != nil, tc.wantAdmin)
			}
			if admin != nil && len(strings.TrimSpace(string(admin.Data["admin-key"]))) < 32 {
				t.Errorf("admin key of %d characters", len(admin.Data["admin-key"]))
			}
			w, _ := m.Workload("certstore")
			var kekVolume string
			for _, vol := range w.Pod.Spec.Volumes {
				if vol.Name == "kek" && vol.Secret != nil {
					kekVolume = vol.Secret.SecretName
				}
			}
			if kekVolume != tc.wantKEKVolumeOf {
				t.Errorf("certstore mounts its KEK from %q, want %q", kekVolume, tc.wantKEKVolumeOf)
			}
		})
	}
}

// checkKeyring: lines of <id>:<base64 of 32 bytes> (comments aside), at least one.
func checkKeyring(t *testing.T, keyring string) {
	t.Helper()
	var keys int
	for _, line := range strings.Split(keyring, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || id == "" || err != nil || len(raw) != 32 {
			t.Errorf("keyring line %q is not <id>:<base64 of 32 bytes>", line)
		}
		keys++
	}
	if keys == 0 {
		t.Error("the keyring holds no key")
	}
}

// TestAWSSecretsBackend: certstore on AWS Secrets Manager through IRSA.
func TestAWSSecretsBackend(t *testing.T) {
	m := render(t, set(t, "aws"))
	cfg := configOf(t, m, "certstore")
	if cfg["secrets-backend"] != "aws" || cfg["aws-secret-prefix"] != "prod/portico/" || cfg["kek-file"] != nil {
		t.Errorf("certstore config %v: want the aws backend with its prefix and no KEK", cfg)
	}
	w, _ := m.Workload("certstore")
	if !slices.ContainsFunc(mainContainer(t, w).Env, func(e corev1.EnvVar) bool { return e.Name == "AWS_REGION" && e.Value == "eu-west-1" }) {
		t.Error("certstore has no AWS_REGION")
	}
	sa := m.ServiceAccount(w.Pod.Spec.ServiceAccountName)
	if sa == nil || sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/portico-certstore" {
		t.Errorf("certstore ServiceAccount %+v: want the IRSA role annotation", sa)
	}
	for _, c := range []string{"gateway", "notary", "controlapi"} {
		other, _ := m.Workload(c)
		if sa := m.ServiceAccount(other.Pod.Spec.ServiceAccountName); sa == nil || sa.Annotations["eks.amazonaws.com/role-arn"] != "" {
			t.Errorf("%s's ServiceAccount carries the certstore role", c)
		}
	}
}

// TestGatewayModes: a DaemonSet on host ports 80/443 by default, mapped to unprivileged
// container ports; a Deployment behind a LoadBalancer with PROXY protocol by value; a port
// under 1024 inside the container only with NET_BIND_SERVICE, on the gateway alone.
func TestGatewayModes(t *testing.T) {
	t.Run("daemonset on host ports", func(t *testing.T) {
		m := render(t, set(t, "defaults"))
		if len(m.DaemonSets) != 1 {
			t.Fatalf("%d DaemonSets", len(m.DaemonSets))
		}
		w, _ := m.Workload("gateway")
		c := mainContainer(t, w)
		cfg := configOf(t, m, "gateway")
		hostPorts := map[int32]int32{}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				hostPorts[p.HostPort] = p.ContainerPort
			}
		}
		httpPort, httpsPort := portOf(t, cfg["http-listen"]), portOf(t, cfg["https-listen"])
		if hostPorts[80] != httpPort || hostPorts[443] != httpsPort || len(hostPorts) != 2 || httpPort < 1024 || httpsPort < 1024 {
			t.Errorf("host ports %v, listeners %d/%d: want 80→%d and 443→%d, unprivileged inside", hostPorts, httpPort, httpsPort, httpPort, httpsPort)
		}
		if cfg["redirect-https-port"] != float64(443) {
			t.Errorf("redirect-https-port %v, want the host port 443", cfg["redirect-https-port"])
		}
		if m.Service(chart.ObjectName("gateway")) != nil {
			t.Error("a DaemonSet on host ports needs no gateway Service")
		}
	})
	t.Run("deployment behind a load balancer", func(t *testing.T) {
		m := render(t, set(t, "deployment-loadbalancer"))
		if len(m.DaemonSets) != 0 {
			t.Fatal("a DaemonSet is rendered too")
		}
		var replicas int32
		for _, d := range m.Deployments {
			if d.Name == chart.ObjectName("gateway") && d.Spec.Replicas != nil {
				replicas = *d.Spec.Replicas
			}
		}
		if replicas != 3 {
			t.Errorf("gateway replicas %d, want 3", replicas)
		}
		w, _ := m.Workload("gateway")
		svc := m.Service(chart.ObjectName("gateway"))
		if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Fatalf("gateway Service %+v: want a LoadBalancer with externalTrafficPolicy Local", svc)
		}
		if svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"] != "*" {
			t.Errorf("the provider annotations are not on the Service: %v", svc.Annotations)
		}
		if !selects(svc.Spec.Selector, w.Pod.Labels) {
			t.Error("the Service does not select the gateways")
		}
		c := mainContainer(t, w)
		for _, p := range []struct {
			port int32
			name string
		}{{80, "http"}, {443, "https"}} {
			if !serviceLeadsTo(svc, p.port, c, p.name) {
				t.Errorf("Service port %d does not lead to the %s container port", p.port, p.name)
			}
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Port != 80 && sp.Port != 443 {
				t.Errorf("the public Service exposes port %d", sp.Port)
			}
		}
		if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.HostPort != 0 }) {
			t.Error("host ports on a Deployment")
		}
		cfg := configOf(t, m, "gateway")
		if cfg["proxy-protocol-cidrs"] != "10.0.0.0/16" {
			t.Errorf("proxy-protocol-cidrs = %v", cfg["proxy-protocol-cidrs"])
		}
		if cfg["upstream"] != "invoker.platform.svc.cluster.local:8080" {
			t.Errorf("upstream = %v", cfg["upstream"])
		}
		notaryHost, notaryPort := hostPortOf(t, cfg["notary-http-addr"].(string))
		nw, _ := m.Workload("notary")
		if svc := m.Service(strings.Split(notaryHost, ".")[0]); svc == nil || !serviceLeadsTo(svc, notaryPort, mainContainer(t, nw), "http") {
			t.Errorf("notary-http-addr %v does not lead to the notary's challenge port", cfg["notary-http-addr"])
		}
	})
	t.Run("ports under 1024 inside the container", func(t *testing.T) {
		m := render(t, set(t, "cluster-issuer-low-ports"))
		for _, w := range m.Workloads() {
			sc := mainContainer(t, w).SecurityContext
			hasCap := slices.Contains(sc.Capabilities.Add, "NET_BIND_SERVICE")
			hasSysctl := w.Pod.Spec.SecurityContext != nil && slices.ContainsFunc(w.Pod.Spec.SecurityContext.Sysctls, func(s corev1.Sysctl) bool {
				return s.Name == "net.ipv4.ip_unprivileged_port_start"
			})
			want := w.Component == "gateway"
			if hasCap != want || hasSysctl != want {
				t.Errorf("%s: NET_BIND_SERVICE %v, unprivileged port sysctl %v; want both %v", w.Component, hasCap, hasSysctl, want)
			}
		}
	})
}

// TestServiceMonitors: optional; when on, one per component, each selecting only that
// component's metrics Service, whose port leads to the admin listener.
func TestServiceMonitors(t *testing.T) {
	if n := len(render(t, set(t, "defaults")).CustomObjects("ServiceMonitor")); n != 0 {
		t.Errorf("defaults render %d ServiceMonitors", n)
	}
	m := render(t, set(t, "deployment-loadbalancer"))
	sms := m.CustomObjects("ServiceMonitor")
	if len(sms) != len(chart.Components) {
		t.Fatalf("%d ServiceMonitors, want %d", len(sms), len(chart.Components))
	}
	for _, sm := range sms {
		if sm.GetLabels()["release"] != "kube-prometheus-stack" {
			t.Errorf("%s: labels %v lack the configured release label", sm.GetName(), sm.GetLabels())
		}
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		var matched []*corev1.Service
		for _, svc := range m.Services {
			if selects(sel, svc.Labels) {
				matched = append(matched, svc)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s selects %d Services, want its component's metrics Service", sm.GetName(), len(matched))
			continue
		}
		endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if len(endpoints) != 1 {
			t.Fatalf("%s: %d endpoints", sm.GetName(), len(endpoints))
		}
		ep := endpoints[0].(map[string]any)
		for k := range ep {
			if !slices.Contains([]string{"port", "path", "interval", "scrapeTimeout"}, k) {
				t.Errorf("%s: endpoint field %s is not one the chart is known to use", sm.GetName(), k)
			}
		}
		svc := matched[0]
		component := svc.Labels[chart.ComponentLabel]
		w, _ := m.Workload(component)
		admin := portOf(t, configOf(t, m, component)["admin-listen"])
		var leads bool
		for _, sp := range svc.Spec.Ports {
			if sp.Name == ep["port"] && serviceLeadsTo(svc, sp.Port, mainContainer(t, w), "admin") && sp.Port == admin {
				leads = true
			}
		}
		if !leads || svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("%s: Service %s port %v does not lead to the admin listener %d", sm.GetName(), svc.Name, ep["port"], admin)
		}
	}
}

// TestMetricsOff: without metrics the admin listeners bind to loopback only.
func TestMetricsOff(t *testing.T) {
	m := render(t, set(t, "cluster-issuer-low-ports"))
	for _, c := range chart.Components {
		if addr, _ := configOf(t, m, c)["admin-listen"].(string); !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s admin-listen %q with metrics off", c, addr)
		}
	}
}

// TestNotes renders NOTES.txt as helm would after an install (helm template leaves it out):
// the DNS records customers publish, from the edge values, and how to reach the API.
func TestNotes(t *testing.T) {
	tests := []struct {
		set  string
		want []string
		not  []string
	}{
		{set: "aws", want: []string{"A       203.0.113.10", "AAAA    2001:db8::10", "_verify.", "port-forward svc/edge-portico-controlapi 8080:8080", "get secret portico-admin"}, not: []string{"CNAME"}},
		{set: "deployment-loadbalancer", want: []string{"CNAME   edge.portico-platform.net.", "_verify.", "PROXY protocol is expected from 10.0.0.0/16", "get svc edge-portico-gateway"}},
		{set: "defaults", want: []string{"neither edge.addresses nor edge.cnameTarget is set", "controlapi refuses to", "host ports 80 and 443", "edge-portico-gateway-tls", "Back up the KEK Secret edge-portico-kek"}},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			notes := renderNotes(t, set(t, tc.set))
			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(notes, n) {
					t.Errorf("NOTES contain %q:\n%s", n, notes)
				}
			}
		})
	}
}

// renderNotes copies the chart, adds a template that renders NOTES.txt into a ConfigMap
// with `tpl` (the same engine and context), and renders that template alone.
func renderNotes(t *testing.T, v valueSet) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "portico")
	if err := os.CopyFS(dir, os.DirFS(chart.ChartDir())); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes-under-test.txt"), notes, 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ tpl (.Files.Get \"notes-under-test.txt\") . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-notes-under-test.yaml"), []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	var args []string
	if v.file != "" {
		args = []string{"-f", filepath.Join(dir, v.file)}
	}
	out, err := chart.Template(t.Context(), dir, append(args, "--show-only", "templates/zz-notes-under-test.yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := chart.Decode(out)
	if err != nil || len(m.ConfigMaps) != 1 {
		t.Fatalf("NOTES rendering: %v", err)
	}
	return m.ConfigMaps[0].Data["notes"]
}
