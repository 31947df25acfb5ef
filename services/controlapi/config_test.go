package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "admin-key")
	if err := os.WriteFile(keyFile, []byte("  "+testAdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	edge := []string{"-edge-cname", "edge.example.net"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // empty: valid
	}{
		{"defaults with an edge", edge, nil, ""},
		{"no edge", nil, nil, "-edge-cname"},
		{"edge addresses only", []string{"-edge-addresses", "192.0.2.1,192.0.2.2,2001:db8::1"}, nil, ""},
		{"not an address", []string{"-edge-addresses", "2001:db8::zz"}, nil, "-edge-addresses"},
		{"edge CNAME not a hostname", []string{"-edge-cname", "10.0.0.1"}, nil, "-edge-cname"},
		{"admin key from the environment", edge, map[string]string{"PORTICO_ADMIN_KEY": testAdminKey}, ""},
		{"admin key from a file", append([]string{"-admin-key-file", keyFile}, edge...), nil, ""},
		{"admin key twice", append([]string{"-admin-key-file", keyFile, "-admin-key", testAdminKey}, edge...), nil, "give the admin key once"},
		{"short admin key", append([]string{"-admin-key", "letmein"}, edge...), nil, "at least 32"},
		{"missing admin key file", append([]string{"-admin-key-file", filepath.Join(t.TempDir(), "none")}, edge...), nil, "-admin-key-file"},
		{"plaintext off loopback", append([]string{"-http-listen", "0.0.0.0:8080"}, edge...), nil, "-http-listen"},
		{"plaintext behind a TLS proxy", append([]string{"-listen", "0.0.0.0:9090", "-http-listen", "0.0.0.0:8080", "-behind-tls-proxy"}, edge...), nil, ""},
		{"TLS cert without key", append([]string{"-tls-cert", "cert.pem"}, edge...), nil, "-tls-key go together"},
		{"bad upstream allow-list", append([]string{"-upstream-allow", "10.0.0.1:80"}, edge...), nil, "-upstream-allow"},
		{"bad rate", append([]string{"-create-rate", "lots"}, edge...), nil, "-create-rate"},
		{"rate off", append([]string{"-create-rate", "off", "-verify-rate", "off"}, edge...), nil, ""},
		{"short verify deadline", append([]string{"-verify-deadline", "5m"}, edge...), nil, "-verify-deadline"},
		{"tiny request cap", append([]string{"-max-request-bytes", "10"}, edge...), nil, "-max-request-bytes"},
		{"bad delegation zone", append([]string{"-delegation-zone", "com"}, edge...), nil, "-delegation-zone"},
		{"unknown environment variable", edge, map[string]string{"PORTICO_ADMIN_KYE": "x"}, "PORTICO_ADMIN_KYE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := parseConfig(tc.args)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("valid configuration refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
