// Package certinput checks what a writer hands certstore with a certificate: the name,
// the DER chain and the PKCS#8 private key. It is the one parser of untrusted
// certificate input in certstore (fuzzed by FuzzCheck), and it decides the default
// renewal time.
//
// Every refusal is an errkind InvalidArgument with field violations naming the request
// field (hostname, certificate_chain, private_key, renew_time, fencing_token) and the
// rule; a refusal never quotes the key.
package certinput

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/pkg/hostname"
)

// Input is a certificate as a writer sends it.
type Input struct {
	Hostname     string
	Chain        [][]byte
	PrivateKey   []byte
	FencingToken int64
	// RenewTime is nil when the writer leaves the default.
	RenewTime *time.Time
}

// Checked is a validated certificate.
type Checked struct {
	// Name is the normalized hostname or wildcard.
	Name      string
	Leaf      *x509.Certificate
	NotAfter  time.Time
	RenewTime time.Time
}

// Check validates in at time now. policy must allow wildcards (certificates may be
// stored under `*.example.com`).
func Check(policy hostname.Policy, in Input, now time.Time) (Checked, error) {
	var vs []errkind.FieldViolation
	bad := func(field, rule, format string, args ...any) {
		vs = append(vs, errkind.FieldViolation{Field: field, Rule: rule, Description: fmt.Sprintf(format, args...)})
	}
	name, err := policy.Parse(in.Hostname)
	if herr, ok := err.(*hostname.Error); ok {
		bad("hostname", string(herr.Rule), "%s", herr.Detail)
	} else if err != nil {
		bad("hostname", "invalid", "%v", err)
	}
	if in.FencingToken < 0 {
		bad("fencing_token", "non-negative", "must be zero or more")
	}

	leaf := parseChain(in.Chain, bad)
	if leaf != nil && err == nil {
		checkCovers(leaf, name, bad)
	}
	if leaf != nil && !now.Before(leaf.NotAfter) {
		bad("certificate_chain", "expired", "the leaf expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	checkKey(in.PrivateKey, leaf, bad)

	out := Checked{Name: name.ASCII, Leaf: leaf}
	if leaf != nil {
		out.NotAfter = leaf.NotAfter
		out.RenewTime = DefaultRenewTime(leaf.NotBefore, leaf.NotAfter)
		if in.RenewTime != nil {
			out.RenewTime = *in.RenewTime
			if !out.RenewTime.Before(leaf.NotAfter) {
				bad("renew_time", "before-not-after", "must be before the leaf's notAfter (%s)", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
	if err := errkind.InvalidFields(vs...); err != nil {
		return Checked{}, err
	}
	return out, nil
}

// DefaultRenewTime is when a third of the lifetime remains, or half for certificates
// shorter than 10 days (as ACME short-lived certificates are).
func DefaultRenewTime(notBefore, notAfter time.Time) time.Time {
	life := notAfter.Sub(notBefore)
	if life < 10*24*time.Hour {
		return notAfter.Add(-life / 2)
	}
	return notAfter.Add(-life / 3)
}

func parseChain(chain [][]byte, bad func(field, rule, format string, args ...any)) *x509.Certificate {
	if len(chain) == 0 {
		bad("certificate_chain", "required", "needs the leaf certificate, then any intermediates")
		return nil
	}
	var leaf *x509.Certificate
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			bad("certificate_chain", "der", "element %d is not a DER certificate: %v", i, err)
			continue
		}
		if i == 0 {
			leaf = c
		}
	}
	return leaf
}

// checkCovers requires the leaf to be valid for name: an exact name through its DNS
// SANs (a covering wildcard SAN counts), a wildcard name through that exact wildcard SAN.
func checkCovers(leaf *x509.Certificate, name hostname.Name, bad func(field, rule, format string, args ...any)) {
	if name.Kind == hostname.Wildcard {
		if !slices.Contains(leaf.DNSNames, name.ASCII) {
			bad("certificate_chain", "covers-hostname", "the leaf does not carry the SAN %q (it has %q)", name.ASCII, leaf.DNSNames)
		}
		return
	}
	if err := leaf.VerifyHostname(name.ASCII); err != nil {
		bad("certificate_chain", "covers-hostname", "the leaf is not valid for %q (its names: %q)", name.ASCII, leaf.DNSNames)
	}
}

type publicKey interface {
	Equal(crypto.PublicKey) bool
}

func checkKey(der []byte, leaf *x509.Certificate, bad func(field, rule, format string, args ...any)) {
	if len(der) == 0 {
		bad("private_key", "required", "needs the leaf's private key, PKCS#8 DER")
		return
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		bad("private_key", "pkcs8", "is not a PKCS#8 DER private key")
		return
	}
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	default:
		bad("private_key", "key-type", "is a %T; only RSA and ECDSA keys are served", key)
		return
	}
	if leaf == nil {
		return
	}
	if lp, ok := leaf.PublicKey.(publicKey); !ok || !lp.Equal(pub) {
		bad("private_key", "matches-leaf", "does not match the leaf's public key")
	}
}
