package chart

import (
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Endpoint is one end of a connection: a pod (namespace, its namespace's labels, its own
// labels) or, with IP set, an address outside the cluster.
type Endpoint struct {
	Namespace       string
	NamespaceLabels map[string]string
	Labels          map[string]string
	IP              netip.Addr
}

// External is an address outside the cluster.
func External(ip string) Endpoint { return Endpoint{IP: netip.MustParseAddr(ip)} }

// Pod is a pod with these labels in a namespace named ns (whose only label is the
// kubernetes.io/metadata.name that Kubernetes sets).
func Pod(ns string, podLabels map[string]string) Endpoint {
	return Endpoint{Namespace: ns, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns}, Labels: podLabels}
}

func (e Endpoint) isPod() bool { return !e.IP.IsValid() }

// Allowed reports whether the policies, all in namespace ns, let a TCP connection from src
// reach dst on port, with the semantics of Kubernetes NetworkPolicy: a pod selected by a
// policy of a direction accepts in that direction only what some rule of such a policy
// admits; a pod no policy selects is open. Named ports are not supported (the chart uses
// numbers). Pods are in ns unless their Namespace says otherwise.
func Allowed(policies []*networkingv1.NetworkPolicy, ns string, src, dst Endpoint, port int32) bool {
	return allowedEgress(policies, ns, src, dst, port) && allowedIngress(policies, ns, src, dst, port)
}

func allowedEgress(policies []*networkingv1.NetworkPolicy, ns string, src, dst Endpoint, port int32) bool {
	if !src.isPod() || src.Namespace != ns {
		return true // the chart's policies do not govern what leaves other pods
	}
	selected := false
	for _, p := range policies {
		if !hasType(p, networkingv1.PolicyTypeEgress) || !matches(&p.Spec.PodSelector, src.Labels) {
			continue
		}
		selected = true
		for _, r := range p.Spec.Egress {
			if portsAdmit(r.Ports, port) && peersAdmit(r.To, ns, dst) {
				return true
			}
		}
	}
	return !selected
}

func allowedIngress(policies []*networkingv1.NetworkPolicy, ns string, src, dst Endpoint, port int32) bool {
	if !dst.isPod() || dst.Namespace != ns {
		return true
	}
	selected := false
	for _, p := range policies {
		if !hasType(p, networkingv1.PolicyTypeIngress) || !matches(&p.Spec.PodSelector, dst.Labels) {
			continue
		}
		selected = true
		for _, r := range p.Spec.Ingress {
			if portsAdmit(r.Ports, port) && peersAdmit(r.From, ns, src) {
				return true
			}
		}
	}
	return !selected
}

func hasType(p *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	for _, pt := range p.Spec.PolicyTypes {
		if pt == t {
			return true
		}
	}
	return false
}

// portsAdmit: no ports means every port.
func portsAdmit(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != "TCP" {
			continue
		}
		if p.Port == nil {
			return true
		}
		lo := p.Port.IntVal
		hi := lo
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if port >= lo && port <= hi {
			return true
		}
	}
	return false
}

// peersAdmit: no peers means every peer.
func peersAdmit(peers []networkingv1.NetworkPolicyPeer, ns string, e Endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if peerAdmits(p, ns, e) {
			return true
		}
	}
	return false
}

func peerAdmits(p networkingv1.NetworkPolicyPeer, ns string, e Endpoint) bool {
	if p.IPBlock != nil {
		if e.isPod() {
			return false // pod addresses are not what the chart's ipBlocks describe
		}
		cidr, err := netip.ParsePrefix(p.IPBlock.CIDR)
		if err != nil || !cidr.Contains(e.IP) {
			return false
		}
		for _, ex := range p.IPBlock.Except {
			if x, err := netip.ParsePrefix(ex); err == nil && x.Contains(e.IP) {
				return false
			}
		}
		return true
	}
	if !e.isPod() {
		return false
	}
	if p.NamespaceSelector == nil {
		if e.Namespace != ns {
			return false
		}
	} else if !matches(p.NamespaceSelector, e.NamespaceLabels) {
		return false
	}
	return p.PodSelector == nil || matches(p.PodSelector, e.Labels)
}

func matches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}
