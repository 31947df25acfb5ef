package chart_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/portico-dev/portico/test/chart"
)

// TestWildcardDelegationBuiltin: with a delegation zone and the built-in writer, the
// notary and controlapi get the same zone, the notary its DNS server settings and UDP and
// TCP container ports, a Service exposes them on 53 (both protocols), and the notary's
// NetworkPolicy lets DNS in from anywhere on that port and on nothing else new.
func TestWildcardDelegationBuiltin(t *testing.T) {
	m := render(t, set(t, "wildcards"))
	notary := configOf(t, m, "notary")
	want := map[string]any{
		"delegation-zone": "acme.portico-platform.net", "delegation-writer": "builtin",
		"delegation-nameservers": "ns1.portico-platform.net,ns2.portico-platform.net",
		"delegation-dns-listen":  ":8053", "delegation-ttl": "10s",
	}
	for k, v := range want {
		if notary[k] != v {
			t.Errorf("notary %s = %v, want %v", k, notary[k], v)
		}
	}
	if got := configOf(t, m, "controlapi")["delegation-zone"]; got != "acme.portico-platform.net" {
		t.Errorf("controlapi delegation-zone = %v, want the notary's", got)
	}

	w, _ := m.Workload("notary")
	c := mainContainer(t, w)
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	if p := ports["dns-udp"]; p.ContainerPort != 8053 || p.Protocol != corev1.ProtocolUDP {
		t.Errorf("container port dns-udp %+v, want 8053/UDP", p)
	}
	if p := ports["dns-tcp"]; p.ContainerPort != 8053 || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("container port dns-tcp %+v, want 8053/TCP", p)
	}

	svc := m.Service(chart.ObjectName("notary") + "-dns")
	if svc == nil {
		t.Fatal("no notary-dns Service")
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "nlb" {
		t.Errorf("Service type %s annotations %v, want a LoadBalancer with the values' annotations", svc.Spec.Type, svc.Annotations)
	}
	if !selects(svc.Spec.Selector, w.Pod.Labels) {
		t.Errorf("Service selector %v does not select the notary's pods %v", svc.Spec.Selector, w.Pod.Labels)
	}
	protocols := map[corev1.Protocol]bool{}
	for _, p := range svc.Spec.Ports {
		target, ok := ports[p.TargetPort.StrVal]
		if p.Port != 53 || !ok || target.Protocol != p.Protocol {
			t.Errorf("Service port %+v: want 53 to a container port of the same protocol", p)
		}
		protocols[p.Protocol] = true
	}
	if !protocols[corev1.ProtocolUDP] || !protocols[corev1.ProtocolTCP] {
		t.Errorf("Service protocols %v, want UDP and TCP", protocols)
	}

	resolver := chart.External("198.51.100.53")
	pod := chart.Pod(chart.Namespace, w.Pod.Labels)
	if !chart.Allowed(m.NetworkPolicies, chart.Namespace, resolver, pod, 8053) {
		t.Error("the NetworkPolicies keep the CA's resolvers from the built-in DNS server")
	}
	if chart.Allowed(m.NetworkPolicies, chart.Namespace, resolver, pod, 9092) {
		t.Error("the internet reaches the notary's gRPC port")
	}
	if len(c.EnvFrom) != 0 {
		t.Errorf("envFrom %v with the built-in writer", c.EnvFrom)
	}
}

// TestWildcardDelegationLegoProvider: with a lego provider the notary gets the writer,
// no DNS server settings, ports or Service, the provider's credentials with envFrom, and
// egress to the provider's API on 443.
func TestWildcardDelegationLegoProvider(t *testing.T) {
	m := render(t, set(t, "wildcards-route53"))
	notary := configOf(t, m, "notary")
	if notary["delegation-writer"] != "route53" || notary["delegation-zone"] != "acme.portico-platform.net" {
		t.Errorf("notary config %v, want writer route53 for the zone", notary)
	}
	for _, k := range []string{"delegation-dns-listen", "delegation-nameservers"} {
		if _, set := notary[k]; set {
			t.Errorf("%s set with a lego writer", k)
		}
	}
	if m.Service(chart.ObjectName("notary")+"-dns") != nil {
		t.Error("a DNS Service with a lego writer")
	}
	w, _ := m.Workload("notary")
	c := mainContainer(t, w)
	for _, p := range c.Ports {
		if strings.HasPrefix(p.Name, "dns-") {
			t.Errorf("container port %s with a lego writer", p.Name)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "portico-route53" {
		t.Errorf("envFrom %+v, want the provider's Secret", c.EnvFrom)
	}
	pod := chart.Pod(chart.Namespace, w.Pod.Labels)
	if !chart.Allowed(m.NetworkPolicies, chart.Namespace, pod, chart.External("52.94.1.1"), 443) {
		t.Error("the notary cannot reach the DNS provider's API")
	}
	if chart.Allowed(m.NetworkPolicies, chart.Namespace, chart.External("198.51.100.53"), pod, 8053) {
		t.Error("DNS ingress opened with a lego writer")
	}
}

// TestNoDelegationByDefault: without a zone nothing of the above is rendered.
func TestNoDelegationByDefault(t *testing.T) {
	m := render(t, set(t, "defaults"))
	for _, component := range []string{"notary", "controlapi"} {
		for k := range configOf(t, m, component) {
			if strings.HasPrefix(k, "delegation-") {
				t.Errorf("%s: %s set without a delegation zone", component, k)
			}
		}
	}
	if m.Service(chart.ObjectName("notary")+"-dns") != nil {
		t.Error("a DNS Service without a delegation zone")
	}
}

// TestDelegationRefusals: combinations the chart refuses, naming the value.
func TestDelegationRefusals(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"built-in server without nameservers", []string{"--set", "delegation.zone=acme.portico-platform.net"}, "delegation.nameservers"},
		{"a writer the notary does not carry", []string{"--set", "delegation.zone=acme.portico-platform.net", "--set", "delegation.writer=azuredns"}, "/delegation/writer"},
		{"a zone that is no DNS name", []string{"--set", "delegation.zone=https://acme.example"}, "/delegation/zone"},
		{"a Service type Kubernetes lacks", []string{"--set", "delegation.dns.service.type=ExternalDNS"}, "/delegation/dns/service/type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chart.Template(t.Context(), chart.ChartDir(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("render with %v: %v; want a refusal naming %s", tc.args, err, tc.wantErr)
			}
		})
	}
}
