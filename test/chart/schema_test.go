package chart_test

import (
	"strings"
	"testing"

	"github.com/portico-dev/portico/test/chart"
)

// TestSchemaRefusesWrongValues: values.schema.json refuses unknown keys at every level and
// wrong types, and the templates refuse combinations that cannot work, each with a message
// naming the value.
func TestSchemaRefusesWrongValues(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "unknown top-level key", args: []string{"--set", "replicas=3"}, wantErr: "additional properties 'replicas' not allowed"},
		{name: "unknown component key", args: []string{"--set", "gateway.replcas=3"}, wantErr: "'replcas' not allowed"},
		{name: "unknown nested key", args: []string{"--set", "gateway.resources.limits.cpuu=1"}, wantErr: "'cpuu' not allowed"},
		{name: "unknown key in a NetworkPolicy peer", args: []string{"--set", "networkPolicy.redisTo[0].ipBlok.cidr=10.0.0.0/8"}, wantErr: "'ipBlok' not allowed"},
		{name: "unknown key in a label selector", args: []string{"--set", "networkPolicy.controlapiFrom[0].podSelector.matchLabel.app=x"}, wantErr: "'matchLabel' not allowed"},
		{name: "gateway kind", args: []string{"--set", "gateway.kind=StatefulSet"}, wantErr: "/gateway/kind"},
		{name: "secrets backend", args: []string{"--set", "certstore.secretsBackend=vault"}, wantErr: "/certstore/secretsBackend"},
		{name: "mTLS mode", args: []string{"--set", "mtls.mode=none"}, wantErr: "/mtls/mode"},
		{name: "string for an integer", args: []string{"--set", "redis.db=zero"}, wantErr: "/redis/db"},
		{name: "string for a boolean", args: []string{"--set-string", "redis.tls=yes"}, wantErr: "/redis/tls"},
		{name: "port out of range", args: []string{"--set", "gateway.hostPorts.https=70000"}, wantErr: "/gateway/hostPorts/https"},
		{name: "redis address without a port", args: []string{"--set", "redis.addr=redis"}, wantErr: "/redis/addr"},
		{name: "duration", args: []string{"--set", "redis.dialTimeout=5 seconds"}, wantErr: "/redis/dialTimeout"},
		{name: "resources without limits", args: []string{"--set", "notary.resources.limits=null"}, wantErr: "/notary/resources"},
		{name: "log level", args: []string{"--set", "log.level=verbose"}, wantErr: "/log/level"},
		{name: "image digest", args: []string{"--set", "certstore.image.digest=latest"}, wantErr: "/certstore/image/digest"},
		{name: "IRSA role ARN", args: []string{"--set", "certstore.aws.roleArn=portico"}, wantErr: "/certstore/aws/roleArn"},
		{name: "config value that is an object", args: []string{"--set", "gateway.config.upstream.host=x"}, wantErr: "/gateway/config/upstream"},
		// Combinations the schema cannot express, refused by the templates.
		{name: "PROXY protocol without the load balancer's CIDRs", args: []string{"--set", "gateway.proxyProtocol.enabled=true"}, wantErr: "gateway.proxyProtocol.cidrs"},
		{name: "aws backend without a region", args: []string{"--set", "certstore.secretsBackend=aws"}, wantErr: "certstore.aws.region"},
		{name: "an extra setting the chart already sets", args: []string{"--set", "gateway.config.https-listen=:9443"}, wantErr: "gateway.config.https-listen"},
		{name: "controlapi TLS without a Secret", args: []string{"--set", "controlapi.tls.enabled=true"}, wantErr: "controlapi.tls.secretName"},
		{name: "no upstream", args: []string{"--set", "gateway.upstream="}, wantErr: "/gateway/upstream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := chart.Template(t.Context(), chart.ChartDir(), tc.args...)
			if err == nil {
				t.Fatalf("rendered with %v; want a refusal naming %s\n%.300s", tc.args, tc.wantErr, out)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("refused with %v; want it to name %q", err, tc.wantErr)
			}
		})
	}
}

// TestSchemaAcceptsExtraSettings: the config maps take further flags of the services, and
// they reach the config file.
func TestSchemaAcceptsExtraSettings(t *testing.T) {
	m, err := chart.Render(t.Context(), "--set", "gateway.config.cache-max-entries=5000", "--set", "certstore.config.kek-rewrap=true")
	if err != nil {
		t.Fatal(err)
	}
	if got := configOf(t, m, "gateway")["cache-max-entries"]; got != float64(5000) {
		t.Errorf("gateway cache-max-entries = %v", got)
	}
	if got := configOf(t, m, "certstore")["kek-rewrap"]; got != true {
		t.Errorf("certstore kek-rewrap = %v", got)
	}
}
