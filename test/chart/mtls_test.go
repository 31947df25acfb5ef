package chart_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/portico-dev/portico/test/chart"
)

// mountedFile resolves a path inside the container to the Secret key it comes from,
// through the container's volume mounts and the pod's secret volumes.
func mountedFile(t *testing.T, w chart.Workload, file string) (secret, key string) {
	t.Helper()
	c := mainContainer(t, w)
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, vol := range w.Pod.Spec.Volumes {
			if vol.Name != vm.Name || vol.Secret == nil {
				continue
			}
			if len(vol.Secret.Items) == 0 {
				return vol.Secret.SecretName, rel
			}
			for _, it := range vol.Secret.Items {
				if it.Path == rel {
					return vol.Secret.SecretName, it.Key
				}
			}
		}
	}
	t.Fatalf("%s: %s is on no mounted Secret", w.Component, file)
	return "", ""
}

// TestMTLSWiring: every gRPC server and client flag set of every component names the
// component's own identity Secret (tls.crt, tls.key, ca.crt), every client address is a
// rendered Service whose port leads to the target's gRPC container port, and with
// cert-manager each identity is a Certificate with the right URI SAN and the DNS name the
// clients dial.
func TestMTLSWiring(t *testing.T) {
	wantSets := map[string][]string{ // component → flag prefixes of its mTLS file sets
		"gateway":    {"certstore-tls"},
		"certstore":  {"tls"},
		"notary":     {"tls", "certstore-tls"},
		"controlapi": {"certstore-tls", "notary-tls"},
	}
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v)
			vals := chartValues(t, v)
			certs := map[string]*unstructured.Unstructured{}
			for _, c := range m.CustomObjects("Certificate") {
				name, _, _ := unstructured.NestedString(c.Object, "spec", "secretName")
				certs[name] = c
			}
			dialed := map[string]string{} // target component → host the clients dial
			for _, w := range m.Workloads() {
				cfg := configOf(t, m, w.Component)
				tlsSecret := ""
				for _, prefix := range wantSets[w.Component] {
					for suffix, key := range map[string]string{"-cert": "tls.crt", "-key": "tls.key", "-ca": "ca.crt"} {
						file, _ := cfg[prefix+suffix].(string)
						if file == "" {
							t.Errorf("%s: -%s%s is not set", w.Component, prefix, suffix)
							continue
						}
						secret, gotKey := mountedFile(t, w, file)
						if gotKey != key {
							t.Errorf("%s: -%s%s reads key %q of Secret %s, want %q", w.Component, prefix, suffix, gotKey, secret, key)
						}
						if tlsSecret == "" {
							tlsSecret = secret
						} else if secret != tlsSecret {
							t.Errorf("%s: mTLS files from Secrets %s and %s; one identity per component", w.Component, tlsSecret, secret)
						}
					}
				}
				if want := chart.ObjectName(w.Component) + "-tls"; tlsSecret != want {
					t.Errorf("%s: identity Secret %s, want %s", w.Component, tlsSecret, want)
				}
				// No flag set is left half-configured or pointing elsewhere.
				for key := range cfg {
					if strings.HasSuffix(key, "-tls-cert") || key == "tls-cert" {
						prefix := strings.TrimSuffix(key, "-cert")
						if !slices.Contains(wantSets[w.Component], prefix) && !(w.Component == "controlapi" && key == "tls-cert") {
							t.Errorf("%s: unexpected TLS setting %s", w.Component, key)
						}
					}
				}
				// Client addresses lead to the target's gRPC port.
				for _, target := range []string{"certstore", "notary"} {
					addr, ok := cfg[target+"-addr"].(string)
					if !ok {
						continue
					}
					host, port := splitTarget(t, addr)
					dialed[target] = host
					svcName, _, _ := strings.Cut(host, ".")
					svc := m.Service(svcName)
					if svc == nil {
						t.Errorf("%s dials %s: no such Service", w.Component, addr)
						continue
					}
					if host != svcName+"."+chart.Namespace+".svc.cluster.local" {
						t.Errorf("%s dials %s, want the Service's cluster name", w.Component, host)
					}
					tw, _ := m.Workload(target)
					if !selects(svc.Spec.Selector, tw.Pod.Labels) {
						t.Errorf("Service %s does not select the %s pods", svc.Name, target)
					}
					if !serviceLeadsTo(svc, port, mainContainer(t, tw), "grpc") {
						t.Errorf("%s dials port %d of %s, which does not lead to %s's grpc container port", w.Component, port, svc.Name, target)
					}
				}
			}

			if vals.MTLS.Mode != "certManager" {
				if len(certs) != 0 {
					t.Errorf("mode %s renders Certificates", vals.MTLS.Mode)
				}
				return
			}
			for _, c := range chart.Components {
				cert := certs[chart.ObjectName(c)+"-tls"]
				if cert == nil {
					t.Errorf("no Certificate issues %s-tls", chart.ObjectName(c))
					continue
				}
				uris, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "uris")
				if !slices.Equal(uris, []string{"spiffe://portico/" + c}) {
					t.Errorf("%s: URI SANs %v, want spiffe://portico/%s", c, uris, c)
				}
				usages, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "usages")
				for _, u := range []string{"server auth", "client auth"} {
					if !slices.Contains(usages, u) {
						t.Errorf("%s: usages %v lack %q", c, usages, u)
					}
				}
				dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if host, ok := dialed[c]; ok && !slices.Contains(dns, host) {
					t.Errorf("%s: DNS names %v lack %s, the name its clients dial and verify", c, dns, host)
				}
				checkCertificateFields(t, cert)
				kind, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "kind")
				name, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
				switch {
				case vals.MTLS.CertManager.IssuerRef.Name != "":
					if kind != vals.MTLS.CertManager.IssuerRef.Kind || name != vals.MTLS.CertManager.IssuerRef.Name {
						t.Errorf("%s: issuer %s/%s, want the configured one", c, kind, name)
					}
				default:
					issuer := findCustom(m, "Issuer", name)
					if kind != "Issuer" || issuer == nil {
						t.Errorf("%s: issuer %s/%s is not the chart's CA", c, kind, name)
						continue
					}
					caSecret, _, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName")
					var isCA bool
					if ca := certs[caSecret]; ca != nil {
						isCA, _, _ = unstructured.NestedBool(ca.Object, "spec", "isCA")
					}
					if !isCA {
						t.Errorf("issuer %s signs with %s, which is no CA Certificate", name, caSecret)
					}
				}
			}
		})
	}
}

// checkCertificateFields: the cert-manager fields the chart sets are those of
// cert-manager.io/v1 Certificate (the type is not imported, so the fields are listed).
func checkCertificateFields(t *testing.T, cert *unstructured.Unstructured) {
	t.Helper()
	known := []string{"secretName", "secretTemplate", "duration", "renewBefore", "privateKey", "usages", "uris", "dnsNames", "issuerRef", "isCA", "commonName"}
	spec, _, _ := unstructured.NestedMap(cert.Object, "spec")
	for k := range spec {
		if !slices.Contains(known, k) {
			t.Errorf("Certificate %s: spec.%s is not a field the chart is known to use", cert.GetName(), k)
		}
	}
	pk, _, _ := unstructured.NestedMap(cert.Object, "spec", "privateKey")
	for k := range pk {
		if !slices.Contains([]string{"algorithm", "size", "rotationPolicy", "encoding"}, k) {
			t.Errorf("Certificate %s: spec.privateKey.%s is not a cert-manager field", cert.GetName(), k)
		}
	}
	if s, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); s == "" {
		t.Errorf("Certificate %s has no secretName", cert.GetName())
	}
}

func findCustom(m *chart.Manifest, kind, name string) *unstructured.Unstructured {
	for _, u := range m.CustomObjects(kind) {
		if u.GetName() == name {
			return u
		}
	}
	return nil
}

// splitTarget splits "dns:///host:port" into host and port.
func splitTarget(t *testing.T, target string) (string, int32) {
	t.Helper()
	return hostPortOf(t, strings.TrimPrefix(target, "dns:///"))
}

func hostPortOf(t *testing.T, addr string) (string, int32) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("%q has no port", addr)
	}
	return addr[:i], portOf(t, addr[i:])
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// serviceLeadsTo: the Service has port, whose targetPort is the container port named name.
func serviceLeadsTo(svc *corev1.Service, port int32, c corev1.Container, name string) bool {
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		for _, cp := range c.Ports {
			if cp.Name == name && (sp.TargetPort.StrVal == name || sp.TargetPort.IntVal == cp.ContainerPort) {
				return true
			}
		}
	}
	return false
}
