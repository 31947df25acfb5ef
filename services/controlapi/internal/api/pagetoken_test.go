package api

import (
	"testing"

	"github.com/portico-dev/portico/pkg/errkind"
)

func TestPageTokenIsBoundToItsQuery(t *testing.T) {
	q := pageQuery{Kind: "domains", TenantID: "acme", Status: 4}
	tok := q.encode("shop.example.com")
	if after, err := q.decode(tok); err != nil || after != "shop.example.com" {
		t.Fatalf("round trip: %q, %v", after, err)
	}
	for name, other := range map[string]pageQuery{
		"other tenant": {Kind: "domains", TenantID: "beta", Status: 4},
		"other status": {Kind: "domains", TenantID: "acme"},
		"other kind":   {Kind: "tenants"},
	} {
		if _, err := other.decode(tok); !errkind.Is(err, errkind.InvalidArgument) {
			t.Errorf("%s accepted the token: %v", name, err)
		}
	}
}

// FuzzPageToken: any string a client sends as page_token either decodes to a cursor of
// this query or is INVALID_ARGUMENT on page_token; it never panics.
func FuzzPageToken(f *testing.F) {
	q := pageQuery{Kind: "domains", TenantID: "acme"}
	f.Add(q.encode("shop.example.com"))
	f.Add("")
	f.Add("bm90LWEtdG9rZW4")
	f.Add("eyJrIjoiZG9tYWlucyIsInQiOiJiZXRhIiwiYSI6IngifQ")
	f.Fuzz(func(t *testing.T, token string) {
		after, err := q.decode(token)
		if err != nil {
			if !errkind.Is(err, errkind.InvalidArgument) {
				t.Fatalf("decode(%q) = %v, want INVALID_ARGUMENT", token, err)
			}
			return
		}
		if token != "" && q.encode(after) == "" {
			t.Fatalf("decode(%q) accepted a token that does not re-encode", token)
		}
	})
}
