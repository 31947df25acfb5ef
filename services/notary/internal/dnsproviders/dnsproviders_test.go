package dnsproviders_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portico-dev/portico/services/notary/internal/dnsproviders"
)

// serviceAccount is a Google service account key file as the console downloads it (the
// key is made up; nothing is sent to Google while the provider is built).
func serviceAccount(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "portico-test", "private_key_id": "1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "notary@portico-test.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": "https://oauth2.googleapis.com/token",
	})
	return string(b)
}

// TestEachProviderBuildsFromItsEnvironment builds every supported provider from lego's
// standard variables for it, and checks that each refuses to build without them (so the
// variables named here are the ones the provider reads).
func TestEachProviderBuildsFromItsEnvironment(t *testing.T) {
	script := filepath.Join(t.TempDir(), "dns-hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"route53", func(*testing.T) map[string]string {
			return map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1", "AWS_HOSTED_ZONE_ID": "Z123"}
		}},
		{"cloudflare", func(*testing.T) map[string]string { return map[string]string{"CF_DNS_API_TOKEN": "token"} }},
		{"gcloud", func(t *testing.T) map[string]string {
			return map[string]string{"GCE_SERVICE_ACCOUNT": serviceAccount(t)}
		}},
		{"digitalocean", func(*testing.T) map[string]string { return map[string]string{"DO_AUTH_TOKEN": "token"} }},
		{"hetzner", func(*testing.T) map[string]string { return map[string]string{"HETZNER_API_TOKEN": "token"} }},
		{"ovh", func(*testing.T) map[string]string {
			return map[string]string{"OVH_ENDPOINT": "ovh-eu", "OVH_APPLICATION_KEY": "ak", "OVH_APPLICATION_SECRET": "as", "OVH_CONSUMER_KEY": "ck"}
		}},
		{"godaddy", func(*testing.T) map[string]string {
			return map[string]string{"GODADDY_API_KEY": "key", "GODADDY_API_SECRET": "secret"}
		}},
		{"exec", func(*testing.T) map[string]string { return map[string]string{"EXEC_PATH": script} }},
		{"httpreq", func(*testing.T) map[string]string {
			return map[string]string{"HTTPREQ_ENDPOINT": "https://dns-hook.example/"}
		}},
	}
	var tested []string
	for _, tc := range tests {
		tested = append(tested, tc.name)
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			// Nothing from the machine may help or hinder: clear every variable the
			// provider's family reads before setting the test's own.
			for _, kv := range os.Environ() {
				name, _, _ := strings.Cut(kv, "=")
				for prefix := range env {
					family, _, _ := strings.Cut(prefix, "_")
					if strings.HasPrefix(name, family+"_") {
						t.Setenv(name, "")
						os.Unsetenv(name)
					}
				}
			}
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "none"))
			if tc.name != "route53" { // the AWS SDK defers a missing credential to the first call
				if _, err := dnsproviders.New(tc.name); err == nil {
					t.Fatalf("%s built without its variables", tc.name)
				}
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			p, err := dnsproviders.New(tc.name)
			if err != nil {
				t.Fatalf("New(%s) with %v: %v", tc.name, keys(env), err)
			}
			if p == nil {
				t.Fatalf("New(%s) returned no provider", tc.name)
			}
		})
	}
	slices.Sort(tested)
	if !slices.Equal(tested, dnsproviders.Names()) {
		t.Fatalf("tested %v, supported %v: every supported provider needs a case", tested, dnsproviders.Names())
	}
}

func TestUnknownProvider(t *testing.T) {
	_, err := dnsproviders.New("azuredns")
	if err == nil || !strings.Contains(err.Error(), `"azuredns" is not built into the notary`) || !strings.Contains(err.Error(), "route53") {
		t.Fatalf("New(azuredns) = %v, want a refusal listing the supported providers", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
