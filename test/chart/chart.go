// Package chart renders Portico's Helm chart (charts/portico) with the repository's pinned
// helm and decodes every rendered object strictly into its Kubernetes type, so that the
// tests in this module can check what the chart would install: a field Kubernetes does not
// know, a wrong type or a duplicate key fails the decoding. cert-manager and
// prometheus-operator objects, whose Go types are not imported here, are kept as
// unstructured objects and checked field by field by the tests.
package chart

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the Kubernetes version the chart is rendered for (the chart needs 1.27+).
const KubeVersion = "1.33.0"

// Namespace is the namespace the chart is rendered into.
const Namespace = "portico"

// Release is the release name; objects are named "<Release>-portico-<component>".
const Release = "edge"

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ChartDir is charts/portico.
func ChartDir() string { return filepath.Join(RepoRoot(), "charts", "portico") }

// Helm is the pinned helm that `make tools` installs into bin/.
func Helm() (string, error) {
	p := filepath.Join(RepoRoot(), "bin", "helm")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("helm is not installed at %s: run `make tools` (%w)", p, err)
	}
	return p, nil
}

// Run runs helm with args and returns its standard output; a failure carries stderr.
func Run(ctx context.Context, args ...string) ([]byte, error) {
	helm, err := Helm()
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// Template renders the chart in chartDir with extra helm arguments (-f, --set).
func Template(ctx context.Context, chartDir string, args ...string) ([]byte, error) {
	base := []string{"template", Release, chartDir, "--namespace", Namespace, "--kube-version", KubeVersion}
	return Run(ctx, append(base, args...)...)
}

// Manifest is the decoded output of one rendering, by kind.
type Manifest struct {
	Deployments     []*appsv1.Deployment
	DaemonSets      []*appsv1.DaemonSet
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	ServiceAccounts []*corev1.ServiceAccount
	PDBs            []*policyv1.PodDisruptionBudget
	NetworkPolicies []*networkingv1.NetworkPolicy
	Jobs            []*batchv1.Job
	// Custom holds the objects of custom resources (cert-manager, prometheus-operator).
	Custom []*unstructured.Unstructured
}

// customKinds are the custom resources the chart may render, by apiVersion and kind.
var customKinds = map[string]bool{
	"cert-manager.io/v1 Certificate":          true,
	"cert-manager.io/v1 Issuer":               true,
	"monitoring.coreos.com/v1 ServiceMonitor": true,
}

// Decode splits a multi-document manifest and decodes each object strictly into its type.
// An object of a kind this package does not know is an error.
func Decode(manifest []byte) (*Manifest, error) {
	m := &Manifest{}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := m.add(doc); err != nil {
			return nil, err
		}
	}
}

func (m *Manifest) add(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w\n%s", err, doc)
	}
	id := head.APIVersion + " " + head.Kind
	var err error
	switch id {
	case "apps/v1 Deployment":
		m.Deployments, err = appendStrict(m.Deployments, doc)
	case "apps/v1 DaemonSet":
		m.DaemonSets, err = appendStrict(m.DaemonSets, doc)
	case "v1 Service":
		m.Services, err = appendStrict(m.Services, doc)
	case "v1 ConfigMap":
		m.ConfigMaps, err = appendStrict(m.ConfigMaps, doc)
	case "v1 Secret":
		m.Secrets, err = appendStrict(m.Secrets, doc)
	case "v1 ServiceAccount":
		m.ServiceAccounts, err = appendStrict(m.ServiceAccounts, doc)
	case "policy/v1 PodDisruptionBudget":
		m.PDBs, err = appendStrict(m.PDBs, doc)
	case "networking.k8s.io/v1 NetworkPolicy":
		m.NetworkPolicies, err = appendStrict(m.NetworkPolicies, doc)
	case "batch/v1 Job":
		m.Jobs, err = appendStrict(m.Jobs, doc)
	default:
		if !customKinds[id] {
			return fmt.Errorf("%s %q: a kind this test does not know; add it to package chart", id, head.Metadata.Name)
		}
		u := &unstructured.Unstructured{}
		if err = yaml.UnmarshalStrict(doc, &u.Object); err == nil {
			m.Custom = append(m.Custom, u)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %q does not decode strictly: %w", id, head.Metadata.Name, err)
	}
	return nil
}

func appendStrict[T any](list []*T, doc []byte) ([]*T, error) {
	obj := new(T)
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return list, err
	}
	return append(list, obj), nil
}

// Render renders the chart with args and decodes the result.
func Render(ctx context.Context, args ...string) (*Manifest, error) {
	out, err := Template(ctx, ChartDir(), args...)
	if err != nil {
		return nil, err
	}
	return Decode(out)
}

// CustomObjects returns the custom objects of one kind.
func (m *Manifest) CustomObjects(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range m.Custom {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// named returns the object of that name in objs, or nil.
func named[T interface{ GetName() string }](objs []T, name string) T {
	var none T
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	return none
}

// ConfigMap returns the ConfigMap of that name, or nil.
func (m *Manifest) ConfigMap(name string) *corev1.ConfigMap { return named(m.ConfigMaps, name) }

// Secret returns the Secret of that name, or nil.
func (m *Manifest) Secret(name string) *corev1.Secret { return named(m.Secrets, name) }

// Service returns the Service of that name, or nil.
func (m *Manifest) Service(name string) *corev1.Service { return named(m.Services, name) }

// ServiceAccount returns the ServiceAccount of that name, or nil.
func (m *Manifest) ServiceAccount(name string) *corev1.ServiceAccount {
	return named(m.ServiceAccounts, name)
}

// Workload is a Deployment or a DaemonSet, reduced to what the tests look at.
type Workload struct {
	Kind      string
	Name      string
	Component string // the app.kubernetes.io/component label
	Selector  map[string]string
	Pod       corev1.PodTemplateSpec
}

// Workloads returns every Deployment and DaemonSet.
func (m *Manifest) Workloads() []Workload {
	var out []Workload
	for _, d := range m.Deployments {
		out = append(out, Workload{Kind: "Deployment", Name: d.Name, Component: d.Labels[ComponentLabel], Selector: d.Spec.Selector.MatchLabels, Pod: d.Spec.Template})
	}
	for _, d := range m.DaemonSets {
		out = append(out, Workload{Kind: "DaemonSet", Name: d.Name, Component: d.Labels[ComponentLabel], Selector: d.Spec.Selector.MatchLabels, Pod: d.Spec.Template})
	}
	return out
}

// Workload returns the workload of a component, or false.
func (m *Manifest) Workload(component string) (Workload, bool) {
	for _, w := range m.Workloads() {
		if w.Component == component {
			return w, true
		}
	}
	return Workload{}, false
}

// ComponentLabel names a pod's component.
const ComponentLabel = "app.kubernetes.io/component"

// Components are Portico's four services, each a directory under services/.
var Components = []string{"gateway", "certstore", "notary", "controlapi"}

// ObjectName is the name the chart gives a component's objects.
func ObjectName(component string) string { return Release + "-portico-" + component }

// stripComments drops whole-line YAML comments (helm's "# Source:" headers).
func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	return bytes.Join(out, []byte("\n"))
}
