package acmetest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/portico-dev/portico/pkg/acmetest"
)

// TestStart starts both servers and checks what a test relies on: the directory
// answers over the trusted pool, names the profiles and ARI, the root is fetchable, and
// the management calls are accepted.
func TestStart(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{HTTPPort: 5002, NonceReject: acmetest.DefaultChaos})
	resp, err := env.HTTPClient().Get(env.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir struct {
		NewOrder    string `json:"newOrder"`
		RenewalInfo string `json:"renewalInfo"`
		Meta        struct {
			Profiles map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&dir) != nil {
		t.Fatalf("directory: %s", resp.Status)
	}
	if dir.NewOrder == "" || dir.RenewalInfo == "" {
		t.Fatalf("directory lacks newOrder or renewalInfo: %+v", dir)
	}
	if _, ok := dir.Meta.Profiles["shortlived"]; !ok {
		t.Fatalf("profiles %v lack shortlived", dir.Meta.Profiles)
	}
	if root := env.Root(t); !root.IsCA {
		t.Fatal("roots/0 is not a CA certificate")
	}
	env.SetTXT(t, "_verify.example.com", "token")
	env.AddA(t, "shop.example.com", "203.0.113.7")
	env.AddCAA(t, "example.com", acmetest.CAA{Tag: "issue", Value: "other-ca.example"})
	env.SetServFail(t, "broken.example.com")
	env.ClearServFail(t, "broken.example.com")
	env.ClearCAA(t, "example.com")
	env.ClearA(t, "shop.example.com")
}
