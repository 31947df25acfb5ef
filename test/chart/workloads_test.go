package chart_test

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/test/chart"
)

// configOf returns the settings of a component's config file (its ConfigMap's config.yaml).
func configOf(t *testing.T, m *chart.Manifest, component string) map[string]any {
	t.Helper()
	cm := m.ConfigMap(chart.ObjectName(component))
	if cm == nil {
		t.Fatalf("no ConfigMap %s", chart.ObjectName(component))
	}
	var c map[string]any
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &c); err != nil {
		t.Fatalf("%s config.yaml: %v", component, err)
	}
	return c
}

// portOf returns the port of a listen address such as ":9104".
func portOf(t *testing.T, addr any) int32 {
	t.Helper()
	s, _ := addr.(string)
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		t.Fatalf("listen address %v: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func mainContainer(t *testing.T, w chart.Workload) corev1.Container {
	t.Helper()
	if len(w.Pod.Spec.Containers) != 1 || len(w.Pod.Spec.InitContainers) != 0 {
		t.Fatalf("%s: want exactly one container, got %d (+%d init)", w.Name, len(w.Pod.Spec.Containers), len(w.Pod.Spec.InitContainers))
	}
	return w.Pod.Spec.Containers[0]
}

func TestEveryComponentHasOneWorkload(t *testing.T) {
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v)
			var got []string
			for _, w := range m.Workloads() {
				got = append(got, w.Component)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(chart.Components))
			if !slices.Equal(got, want) {
				t.Fatalf("workloads by component = %v, want %v", got, want)
			}
		})
	}
}

// TestWorkloadsAreHardened checks the security context, resources, probes, service
// account and disruption budget of every workload in every value set.
func TestWorkloadsAreHardened(t *testing.T) {
	for _, v := range valueSets(t) {
		m := render(t, v)
		for _, w := range m.Workloads() {
			t.Run(v.name+"/"+w.Component, func(t *testing.T) {
				pod := w.Pod.Spec
				c := mainContainer(t, w)

				// Pod: non-root, default seccomp, no API token.
				if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
					psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("pod security context %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
				}
				if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
					t.Error("the pod mounts a service account token; no component talks to the Kubernetes API")
				}
				if pod.HostNetwork || pod.HostPID || pod.HostIPC {
					t.Error("the pod shares a host namespace")
				}
				sa := m.ServiceAccount(pod.ServiceAccountName)
				if sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("service account %q: want a rendered one with automountServiceAccountToken false", pod.ServiceAccountName)
				}

				// Container: no escalation, read-only root, capabilities dropped; only a port
				// under 1024 earns NET_BIND_SERVICE, and nothing else is ever added.
				sc := c.SecurityContext
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
					(sc.Privileged != nil && *sc.Privileged) || sc.Capabilities == nil ||
					!slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Fatalf("container security context %+v", sc)
				}
				lowPort := slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort < 1024 })
				wantAdd := []corev1.Capability(nil)
				if lowPort {
					wantAdd = []corev1.Capability{"NET_BIND_SERVICE"}
				}
				if !slices.Equal(sc.Capabilities.Add, wantAdd) {
					t.Errorf("capabilities added %v, want %v (a port under 1024 bound: %v)", sc.Capabilities.Add, wantAdd, lowPort)
				}

				// Resources: requests and limits of cpu and memory, request not above limit.
				for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, okReq := c.Resources.Requests[name]
					lim, okLim := c.Resources.Limits[name]
					if !okReq || !okLim || req.IsZero() || lim.IsZero() {
						t.Errorf("%s: request %v and limit %v, want both", name, req.String(), lim.String())
						continue
					}
					if req.Cmp(lim) > 0 {
						t.Errorf("%s: request %s above limit %s", name, req.String(), lim.String())
					}
				}

				// Probes: native gRPC against the health-only listener of the config file;
				// liveness asks for the service that ignores dependencies.
				health := portOf(t, configOf(t, m, w.Component)["health-listen"])
				if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == health && p.Name == "health" }) {
					t.Errorf("health port %d is not a declared container port", health)
				}
				for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
					if p == nil || p.GRPC == nil || p.HTTPGet != nil || p.Exec != nil || p.TCPSocket != nil {
						t.Errorf("%s probe %+v: want a gRPC probe only", name, p)
						continue
					}
					if p.GRPC.Port != health {
						t.Errorf("%s probe on port %d, health-listen is %d", name, p.GRPC.Port, health)
					}
				}
				if c.ReadinessProbe.GRPC.Service != nil && *c.ReadinessProbe.GRPC.Service != "" {
					t.Errorf("readiness asks for service %q, want the overall status", *c.ReadinessProbe.GRPC.Service)
				}
				if c.LivenessProbe.GRPC.Service == nil || *c.LivenessProbe.GRPC.Service != grpcserver.LivenessService {
					t.Errorf("liveness asks for %v, want %q", c.LivenessProbe.GRPC.Service, grpcserver.LivenessService)
				}

				// The image is the component's own; the examples image is never deployed.
				if !strings.Contains(c.Image, "portico-"+w.Component) || strings.Contains(c.Image, "example") {
					t.Errorf("image %s", c.Image)
				}
				if len(c.Args) != 2 || c.Args[0] != "-config" {
					t.Errorf("args %q, want -config <file>", c.Args)
				}

				// A Deployment has a PodDisruptionBudget over exactly its pods that never
				// blocks a drain by itself.
				if w.Kind == "Deployment" {
					var found bool
					for _, pdb := range m.PDBs {
						if pdb.Spec.Selector != nil && mapsEqual(pdb.Spec.Selector.MatchLabels, w.Selector) {
							found = true
							if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 && pdb.Spec.MaxUnavailable.StrVal == "" {
								t.Errorf("PDB %s: maxUnavailable %v", pdb.Name, pdb.Spec.MaxUnavailable)
							}
						}
					}
					if !found {
						t.Error("no PodDisruptionBudget selects this Deployment's pods")
					}
				}
			})
		}
	}
}

// TestReferencedObjectsExist: every ConfigMap the pods mount is rendered, and every Secret
// they use is rendered, issued by a rendered Certificate, or named by the value set as
// supplied by the operator.
func TestReferencedObjectsExist(t *testing.T) {
	supplied := map[string][]string{
		"defaults":                 {"edge-portico-gateway-tls", "edge-portico-certstore-tls", "edge-portico-notary-tls", "edge-portico-controlapi-tls"},
		"deployment-loadbalancer":  {"edge-portico-gateway-tls", "edge-portico-certstore-tls", "edge-portico-notary-tls", "edge-portico-controlapi-tls", "portico-redis"},
		"aws":                      {"edge-portico-gateway-tls", "edge-portico-certstore-tls", "edge-portico-notary-tls", "edge-portico-controlapi-tls", "portico-admin", "portico-acme-eab"},
		"cert-manager":             {"portico-kek", "portico-acme-account"},
		"cluster-issuer-low-ports": {"portico-api-tls"},
		"dynamodb":                 {"edge-portico-gateway-tls", "edge-portico-certstore-tls", "edge-portico-notary-tls", "edge-portico-controlapi-tls"},
		"wildcards":                {"edge-portico-gateway-tls", "edge-portico-certstore-tls", "edge-portico-notary-tls", "edge-portico-controlapi-tls"},
		"wildcards-route53":        {"edge-portico-gateway-tls", "edge-portico-certstore-tls", "edge-portico-notary-tls", "edge-portico-controlapi-tls", "portico-route53"},
	}
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v)
			known, ok := supplied[v.name]
			if !ok {
				t.Fatalf("value set %s: say which Secrets it expects the operator to supply", v.name)
			}
			secrets := map[string]bool{}
			for _, s := range known {
				secrets[s] = true
			}
			for _, s := range m.Secrets {
				secrets[s.Name] = true
			}
			for _, c := range m.CustomObjects("Certificate") {
				name, _, _ := unstructured.NestedString(c.Object, "spec", "secretName")
				secrets[name] = true
			}
			used := map[string]bool{}
			for _, w := range m.Workloads() {
				for _, vol := range w.Pod.Spec.Volumes {
					switch {
					case vol.ConfigMap != nil:
						if m.ConfigMap(vol.ConfigMap.Name) == nil {
							t.Errorf("%s mounts ConfigMap %s, which is not rendered", w.Name, vol.ConfigMap.Name)
						}
					case vol.Secret != nil:
						used[vol.Secret.SecretName] = true
						if !secrets[vol.Secret.SecretName] {
							t.Errorf("%s mounts Secret %s, which nobody provides", w.Name, vol.Secret.SecretName)
						}
					}
				}
				for _, e := range mainContainer(t, w).Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						used[e.ValueFrom.SecretKeyRef.Name] = true
						if !secrets[e.ValueFrom.SecretKeyRef.Name] {
							t.Errorf("%s reads %s from Secret %s, which nobody provides", w.Name, e.Name, e.ValueFrom.SecretKeyRef.Name)
						}
					}
				}
				for _, e := range mainContainer(t, w).EnvFrom {
					if e.SecretRef != nil {
						used[e.SecretRef.Name] = true
						if !secrets[e.SecretRef.Name] {
							t.Errorf("%s takes its environment from Secret %s, which nobody provides", w.Name, e.SecretRef.Name)
						}
					}
				}
			}
			for _, s := range known {
				if !used[s] {
					t.Errorf("the supplied Secret %s is not used: the value set's expectation is stale", s)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
