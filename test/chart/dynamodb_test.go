package chart_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portico-dev/portico/test/chart"
)

// TestDynamoDBStore: with store dynamodb every stateful component is configured for
// DynamoDB and for no Redis, runs under its own IRSA role, and the tables are created by
// a hook Job, with the controlapi image, under a ServiceAccount of its own.
func TestDynamoDBStore(t *testing.T) {
	m := render(t, set(t, "dynamodb"))
	roles := map[string]string{
		"certstore":  "arn:aws:iam::123456789012:role/portico-certstore",
		"notary":     "arn:aws:iam::123456789012:role/portico-notary",
		"controlapi": "arn:aws:iam::123456789012:role/portico-controlapi",
	}
	for component, role := range roles {
		cfg := configOf(t, m, component)
		want := map[string]any{"store": "dynamodb", "dynamodb-region": "eu-west-1", "dynamodb-table-prefix": "prod-portico-", "dynamodb-timeout": "5s"}
		for k, v := range want {
			if cfg[k] != v {
				t.Errorf("%s: %s = %v, want %v", component, k, cfg[k], v)
			}
		}
		for k := range cfg {
			if strings.HasPrefix(k, "redis-") {
				t.Errorf("%s: Redis setting %s with store dynamodb", component, k)
			}
		}
		w, _ := m.Workload(component)
		if sa := m.ServiceAccount(w.Pod.Spec.ServiceAccountName); sa == nil || sa.Annotations["eks.amazonaws.com/role-arn"] != role {
			t.Errorf("%s ServiceAccount %+v: want the IRSA role %s", component, sa, role)
		}
	}
	gw, _ := m.Workload("gateway")
	if sa := m.ServiceAccount(gw.Pod.Spec.ServiceAccountName); sa != nil && sa.Annotations["eks.amazonaws.com/role-arn"] != "" {
		t.Error("the gateway's ServiceAccount carries an AWS role")
	}

	if len(m.Jobs) != 1 {
		t.Fatalf("%d Jobs, want the one that creates the tables", len(m.Jobs))
	}
	job := m.Jobs[0]
	if hook := job.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
		t.Errorf("Job hook %q, want pre-install,pre-upgrade", hook)
	}
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	if want := []string{"dynamodb", "create-tables", "-dynamodb-region", "eu-west-1", "-dynamodb-table-prefix", "prod-portico-"}; !slices.Equal(c.Args, want) {
		t.Errorf("Job args %q, want %q", c.Args, want)
	}
	ca, _ := m.Workload("controlapi")
	if c.Image != mainContainer(t, ca).Image {
		t.Errorf("Job image %s, want controlapi's %s", c.Image, mainContainer(t, ca).Image)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the Job's container is not hardened like the services'")
	}
	sa := m.ServiceAccount(pod.ServiceAccountName)
	if sa == nil || sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/portico-dynamodb-tables" {
		t.Fatalf("Job ServiceAccount %+v: want its own IRSA role", sa)
	}
	if sa.Annotations["helm.sh/hook"] == "" || sa.Annotations["helm.sh/hook-weight"] >= job.Annotations["helm.sh/hook-weight"] && sa.Annotations["helm.sh/hook-weight"] != "-10" {
		t.Errorf("the Job's ServiceAccount is not a hook created before the Job: %v", sa.Annotations)
	}
	for component := range roles {
		if pod.ServiceAccountName == chart.ObjectName(component) {
			t.Errorf("the Job runs as %s", component)
		}
	}
}

// TestNoTablesJobByDefault: the defaults keep Redis and render no Job.
func TestNoTablesJobByDefault(t *testing.T) {
	for _, v := range valueSets(t) {
		if v.name == "dynamodb" {
			continue
		}
		if m := render(t, v); len(m.Jobs) != 0 {
			t.Errorf("%s renders %d Jobs", v.name, len(m.Jobs))
		}
	}
}
