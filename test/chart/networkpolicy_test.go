package chart_test

import (
	"fmt"
	"net/url"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/test/chart"
)

// TestAllowedFollowsNetworkPolicySemantics checks the evaluator the policy tests rely on,
// so that a bug in it cannot make them pass.
func TestAllowedFollowsNetworkPolicySemantics(t *testing.T) {
	tcp := func(p int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Port: ptrIntStr(p)}}
	}
	a := map[string]string{"app": "a"}
	b := map[string]string{"app": "b"}
	denyB := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: b},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
	}}
	bFromA := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: b},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: a}}},
			Ports: tcp(80),
		}},
	}}
	aEgressToNet := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: a},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}},
			Ports: tcp(6379),
		}},
	}}
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		src, dst chart.Endpoint
		port     int32
		want     bool
	}{
		{name: "no policy: open", src: chart.Pod("ns", a), dst: chart.Pod("ns", b), port: 80, want: true},
		{name: "selected without rules: closed", policies: p(denyB), src: chart.Pod("ns", a), dst: chart.Pod("ns", b), port: 80},
		{name: "rule admits peer and port", policies: p(bFromA), src: chart.Pod("ns", a), dst: chart.Pod("ns", b), port: 80, want: true},
		{name: "rule admits peer, not port", policies: p(bFromA), src: chart.Pod("ns", a), dst: chart.Pod("ns", b), port: 81},
		{name: "podSelector alone is the policy's namespace", policies: p(bFromA), src: chart.Pod("other", a), dst: chart.Pod("ns", b), port: 80},
		{name: "rules of two policies add up", policies: p(denyB, bFromA), src: chart.Pod("ns", a), dst: chart.Pod("ns", b), port: 80, want: true},
		{name: "egress ipBlock", policies: p(aEgressToNet), src: chart.Pod("ns", a), dst: chart.External("10.2.0.1"), port: 6379, want: true},
		{name: "egress ipBlock except", policies: p(aEgressToNet), src: chart.Pod("ns", a), dst: chart.External("10.1.0.1"), port: 6379},
		{name: "egress outside the block", policies: p(aEgressToNet), src: chart.Pod("ns", a), dst: chart.External("192.0.2.1"), port: 6379},
		{name: "egress to a pod is not an ipBlock", policies: p(aEgressToNet), src: chart.Pod("ns", a), dst: chart.Pod("ns", b), port: 6379},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chart.Allowed(tc.policies, "ns", tc.src, tc.dst, tc.port); got != tc.want {
				t.Fatalf("Allowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func p(ps ...*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy { return ps }

// TestNetworkPolicies checks who reaches whom in every value set with policies on: the
// paths of docs/architecture.md are open, and the others closed.
func TestNetworkPolicies(t *testing.T) {
	for _, v := range valueSets(t) {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v)
			if len(m.NetworkPolicies) == 0 {
				t.Fatal("no NetworkPolicy rendered; every value set keeps them on")
			}
			pods := map[string]chart.Endpoint{}
			ports := map[string]map[string]int32{} // component → port name → container port
			for _, w := range m.Workloads() {
				pods[w.Component] = chart.Pod(chart.Namespace, w.Pod.Labels)
				ports[w.Component] = map[string]int32{}
				for _, cp := range mainContainer(t, w).Ports {
					ports[w.Component][cp.Name] = cp.ContainerPort
				}
				// Exactly one policy per component, in both directions.
				var n int
				for _, np := range m.NetworkPolicies {
					if matchesLabels(np.Spec.PodSelector, w.Pod.Labels) {
						n++
						if len(np.Spec.PolicyTypes) != 2 {
							t.Errorf("policy %s: policyTypes %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
						}
					}
				}
				if n != 1 {
					t.Errorf("%s is selected by %d policies, want 1", w.Component, n)
				}
			}
			values := chartValues(t, v)
			redisIP := "10.0.64.5" // inside the deployment-loadbalancer set's redisTo block
			redisPort := redisPortOf(t, values)
			stranger := chart.Pod(chart.Namespace, map[string]string{"app": "stranger"})
			elsewhere := chart.Pod("elsewhere", map[string]string{"app": "stranger"})
			prometheus := chart.Pod("monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"})
			dashboards := chart.Pod("dashboards", map[string]string{"app": "dashboard"})
			kubeDNS := chart.Pod("kube-system", map[string]string{"k8s-app": "kube-dns"})
			upstream := chart.Pod("platform", map[string]string{"app": "invoker"})
			client := chart.External("198.51.100.20")
			acme := chart.External("172.65.32.248")
			narrowedUpstream := len(values.NetworkPolicy.GatewayUpstreamTo) > 0 || len(values.NetworkPolicy.GatewayUpstreamPorts) > 0
			metricsOn := values.Metrics.Enabled
			restrictedAPI := v.name == "deployment-loadbalancer" // controlapiFrom: the dashboards namespace only

			type path struct {
				from, to string
				src, dst chart.Endpoint
				port     int32
				want     bool
			}
			var paths []path
			add := func(from string, src chart.Endpoint, to string, dst chart.Endpoint, port int32, want bool) {
				paths = append(paths, path{from, to, src, dst, port, want})
			}
			cs, no, ca, gw := pods["certstore"], pods["notary"], pods["controlapi"], pods["gateway"]
			csGRPC := ports["certstore"]["grpc"]
			// certstore: gateways (read), notary and controlapi (write); nobody else.
			add("gateway", gw, "certstore grpc", cs, csGRPC, true)
			add("notary", no, "certstore grpc", cs, csGRPC, true)
			add("controlapi", ca, "certstore grpc", cs, csGRPC, true)
			add("stranger", stranger, "certstore grpc", cs, csGRPC, false)
			add("client", client, "certstore grpc", cs, csGRPC, false)
			// notary: gRPC from controlapi only; challenge HTTP from gateways only.
			add("controlapi", ca, "notary grpc", no, ports["notary"]["grpc"], true)
			add("gateway", gw, "notary grpc", no, ports["notary"]["grpc"], false)
			add("certstore", cs, "notary grpc", no, ports["notary"]["grpc"], false)
			add("stranger", stranger, "notary grpc", no, ports["notary"]["grpc"], false)
			add("gateway", gw, "notary http", no, ports["notary"]["http"], true)
			add("controlapi", ca, "notary http", no, ports["notary"]["http"], false)
			add("client", client, "notary http", no, ports["notary"]["http"], false)
			// gateway: the internet on http and https, nothing else on its other ports.
			add("client", client, "gateway http", gw, ports["gateway"]["http"], true)
			add("client", client, "gateway https", gw, ports["gateway"]["https"], true)
			add("client", client, "gateway admin", gw, ports["gateway"]["admin"], false)
			add("gateway", gw, "upstream", upstream, 8080, true)
			// controlapi: the configured sources.
			add("dashboards", dashboards, "controlapi http", ca, ports["controlapi"]["http"], true)
			add("dashboards", dashboards, "controlapi grpc", ca, ports["controlapi"]["grpc"], true)
			add("elsewhere", elsewhere, "controlapi http", ca, ports["controlapi"]["http"], !restrictedAPI)
			add("client", client, "controlapi http", ca, ports["controlapi"]["http"], false)
			if values.Store == "dynamodb" {
				// DynamoDB (443, inside the set's dynamodbTo block): everyone but the gateway;
				// Redis: no one.
				dynamo := chart.External("10.0.3.7")
				for _, c := range []string{"certstore", "notary", "controlapi"} {
					add(c, pods[c], "dynamodb", dynamo, 443, true)
					if c != "notary" { // the notary reaches its ACME CA on 443 anywhere
						add(c, pods[c], "dynamodb outside its block", chart.External("10.1.0.1"), 443, false)
					}
					add(c, pods[c], "redis", chart.External(redisIP), redisPort, false)
				}
				if narrowedUpstream {
					add("gateway", gw, "dynamodb", dynamo, 443, false)
				}
			} else {
				// Redis: everyone but the gateway.
				for _, c := range []string{"certstore", "notary", "controlapi"} {
					add(c, pods[c], "redis", chart.External(redisIP), redisPort, true)
					add(c, pods[c], "redis on another port", chart.External(redisIP), redisPort+1, false)
				}
				if narrowedUpstream {
					add("gateway", gw, "redis", chart.External(redisIP), redisPort, false)
				}
			}
			// The outside world: the notary's CA, certstore's AWS only with that backend.
			acmePort := int32(443)
			if u, err := url.Parse(values.Notary.ACME.Directory); err == nil && u.Port() != "" {
				acmePort = portOf(t, ":"+u.Port())
			}
			add("notary", no, "ACME CA", acme, acmePort, true)
			if acmePort != 443 {
				add("notary", no, "443 elsewhere", acme, 443, false)
			}
			add("certstore", cs, "AWS", acme, 443, values.Certstore.SecretsBackend == "aws")
			add("controlapi", ca, "the internet", acme, 443, false)
			for _, c := range chart.Components {
				add(c, pods[c], "DNS", kubeDNS, 53, true)
				add("kubelet", client, c+" health", pods[c], ports[c]["health"], true)
				add("prometheus", prometheus, c+" admin", pods[c], ports[c]["admin"], metricsOn)
				add("stranger", stranger, c+" admin", pods[c], ports[c]["admin"], false)
			}
			for _, p := range paths {
				if got := chart.Allowed(m.NetworkPolicies, chart.Namespace, p.src, p.dst, p.port); got != p.want {
					t.Errorf("%s → %s (port %d): allowed %v, want %v", p.from, p.to, p.port, got, p.want)
				}
			}
		})
	}
}

func matchesLabels(sel metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil {
		panic(fmt.Sprintf("bad selector %v: %v", sel, err))
	}
	return s.Matches(labelSet(l))
}
