package awssm_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/certstore/internal/secrets"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/awssm"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/awssm/smfake"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/secretstest"
)

// awsEnv gives the SDK's standard configuration chain static credentials and a region,
// and keeps it away from any shared files or instance metadata on the machine.
func awsEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
}

func newBackend(t *testing.T, fake *smfake.Server) *awssm.Backend {
	t.Helper()
	awsEnv(t)
	b, err := awssm.New(t.Context(), awssm.Options{Prefix: "portico/test/", Endpoint: fake.URL, ProbeEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContract(t *testing.T) {
	secretstest.Run(t, func(t *testing.T) secrets.Backend { return newBackend(t, smfake.Start(t)) }, true)
}

func TestSecretNames(t *testing.T) {
	fake := smfake.Start(t)
	b := newBackend(t, fake)
	tests := []struct{ name, wantPrefix string }{
		{"shop.example.com", "portico/test/shop.example.com/"},
		{"*.example.com", "portico/test/_.example.com/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := b.Seal(t.Context(), tc.name, []byte("k"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(ref), tc.wantPrefix) || strings.Contains(string(ref), "*") {
				t.Fatalf("secret %q, want it under %q without '*'", ref, tc.wantPrefix)
			}
		})
	}
	if _, err := b.Open(t.Context(), "other.example.com", []byte("portico/test/shop.example.com/x")); err == nil {
		t.Fatal("opened a secret of another certificate")
	}
}

func TestProbe(t *testing.T) {
	fake := smfake.Start(t)
	b := newBackend(t, fake)
	if err := b.Probe(t.Context()); err != nil {
		t.Fatalf("probe of a healthy service: %v", err)
	}
	if err := b.Probe(t.Context()); err != nil || fake.Calls("GetSecretValue") != 1 {
		t.Fatalf("second probe within ProbeEvery: err %v, %d calls; want the cached answer", err, fake.Calls("GetSecretValue"))
	}

	failing := smfake.Start(t)
	failing.FailNext(100)
	if err := newBackend(t, failing).Probe(t.Context()); err == nil {
		t.Fatal("probe of a failing service succeeded")
	}
}

func TestErrorsDoNotLeakTheKey(t *testing.T) {
	fake := smfake.Start(t)
	b := newBackend(t, fake)
	key := []byte("super secret key bytes")
	fake.FailNext(100)
	_, err := b.Seal(t.Context(), "a.example.com", key)
	if err == nil {
		t.Fatal("Seal against a failing service succeeded")
	}
	if bytes.Contains([]byte(err.Error()), key) {
		t.Fatalf("error %q carries the key", err)
	}
	fake.FailNext(0)
	if _, err := b.Open(t.Context(), "a.example.com", []byte("portico/test/a.example.com/missing")); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("missing secret: err = %v, want ErrNotFound", err)
	}
}
