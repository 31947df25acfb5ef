package certinput_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/services/certstore/internal/certinput"
	"github.com/portico-dev/portico/services/certstore/internal/testcert"
)

var policy = hostname.Policy{AllowWildcard: true}

func TestCheck(t *testing.T) {
	ca := testcert.NewCA(t)
	now := time.Now()
	shop := ca.Issue(t, testcert.Leaf{DNSNames: []string{"shop.example.com"}})
	wild := ca.Issue(t, testcert.Leaf{DNSNames: []string{"*.example.com", "example.com"}})
	expired := ca.Issue(t, testcert.Leaf{DNSNames: []string{"shop.example.com"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	rsaLeaf := ca.Issue(t, testcert.Leaf{DNSNames: []string{"shop.example.com"}, Key: testcert.RSAKey(t)})
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	early := now.Add(24 * time.Hour)
	late := shop.Leaf.NotAfter.Add(time.Hour)

	tests := []struct {
		name      string
		in        certinput.Input
		wantField string // empty: accepted
		wantRule  string
	}{
		{"exact name", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: shop.Key}, "", ""},
		{"name normalized", certinput.Input{Hostname: "SHOP.example.com.", Chain: shop.Chain, PrivateKey: shop.Key}, "", ""},
		{"RSA key", certinput.Input{Hostname: "shop.example.com", Chain: rsaLeaf.Chain, PrivateKey: rsaLeaf.Key}, "", ""},
		{"wildcard name with its exact SAN", certinput.Input{Hostname: "*.example.com", Chain: wild.Chain, PrivateKey: wild.Key}, "", ""},
		{"exact name under a wildcard SAN", certinput.Input{Hostname: "a.example.com", Chain: wild.Chain, PrivateKey: wild.Key}, "", ""},
		{"explicit renew time", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: shop.Key, RenewTime: &early}, "", ""},
		{"bad hostname", certinput.Input{Hostname: "10.0.0.1", Chain: shop.Chain, PrivateKey: shop.Key}, "hostname", "ip-literal"},
		{"public suffix", certinput.Input{Hostname: "co.uk", Chain: shop.Chain, PrivateKey: shop.Key}, "hostname", "public-suffix"},
		{"empty chain", certinput.Input{Hostname: "shop.example.com", PrivateKey: shop.Key}, "certificate_chain", "required"},
		{"chain not DER", certinput.Input{Hostname: "shop.example.com", Chain: [][]byte{[]byte("-----BEGIN")}, PrivateKey: shop.Key}, "certificate_chain", "der"},
		{"intermediate not DER", certinput.Input{Hostname: "shop.example.com", Chain: [][]byte{shop.Chain[0], {1, 2}}, PrivateKey: shop.Key}, "certificate_chain", "der"},
		{"leaf for another name", certinput.Input{Hostname: "other.example.com", Chain: shop.Chain, PrivateKey: shop.Key}, "certificate_chain", "covers-hostname"},
		{"wildcard name without the wildcard SAN", certinput.Input{Hostname: "*.shop.example.com", Chain: shop.Chain, PrivateKey: shop.Key}, "certificate_chain", "covers-hostname"},
		{"wildcard leaf two labels down", certinput.Input{Hostname: "a.b.example.com", Chain: wild.Chain, PrivateKey: wild.Key}, "certificate_chain", "covers-hostname"},
		{"expired leaf", certinput.Input{Hostname: "shop.example.com", Chain: expired.Chain, PrivateKey: expired.Key}, "certificate_chain", "expired"},
		{"no key", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain}, "private_key", "required"},
		{"key not PKCS#8", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: []byte{0x30, 0x03, 1, 2, 3}}, "private_key", "pkcs8"},
		{"Ed25519 key", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: edDER}, "private_key", "key-type"},
		{"another leaf's key", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: wild.Key}, "private_key", "matches-leaf"},
		{"renew time after notAfter", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: shop.Key, RenewTime: &late}, "renew_time", "before-not-after"},
		{"negative fencing token", certinput.Input{Hostname: "shop.example.com", Chain: shop.Chain, PrivateKey: shop.Key, FencingToken: -1}, "fencing_token", "non-negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := certinput.Check(policy, tc.in, now)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.Leaf == nil || got.NotAfter.IsZero() || !got.RenewTime.Before(got.NotAfter) {
					t.Fatalf("checked = %+v, want the leaf, notAfter and an earlier renew time", got)
				}
				return
			}
			var e *errkind.Error
			if !errors.As(err, &e) || e.Kind != errkind.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			for _, v := range e.Violations {
				if v.Field == tc.wantField && v.Rule == tc.wantRule {
					return
				}
			}
			t.Fatalf("violations %+v, want %s/%s", e.Violations, tc.wantField, tc.wantRule)
		})
	}
}

func TestDefaultRenewTime(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		life time.Duration
		want time.Duration // after start
	}{
		{"90 days: a third left", 90 * 24 * time.Hour, 60 * 24 * time.Hour},
		{"10 days: a third left", 10 * 24 * time.Hour, 10 * 24 * time.Hour * 2 / 3},
		{"6 days: half left", 6 * 24 * time.Hour, 3 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := certinput.DefaultRenewTime(start, start.Add(tc.life)); !got.Equal(start.Add(tc.want)) {
				t.Fatalf("renew at %v after start, want %v", got.Sub(start), tc.want)
			}
		})
	}
}

// FuzzCheck feeds arbitrary chains and keys through the parser: it must never panic,
// and whatever it accepts must be a leaf covering the name with a matching key.
func FuzzCheck(f *testing.F) {
	ca := testcert.NewCA(f)
	good := ca.Issue(f, testcert.Leaf{DNSNames: []string{"shop.example.com"}})
	f.Add("shop.example.com", good.Chain[0], good.Chain[1], good.Key)
	f.Add("*.example.com", []byte{0x30, 0x00}, []byte{}, []byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, name string, leaf, intermediate, key []byte) {
		chain := [][]byte{leaf}
		if len(intermediate) > 0 {
			chain = append(chain, intermediate)
		}
		got, err := certinput.Check(policy, certinput.Input{Hostname: name, Chain: chain, PrivateKey: key}, time.Now())
		if err == nil && (got.Leaf == nil || got.Name == "") {
			t.Fatalf("accepted without a leaf or name: %+v", got)
		}
	})
}
