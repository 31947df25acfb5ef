package storetest

import (
	"encoding/asn1"
	"fmt"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/certstore/internal/store"
)

// BenchGetServing measures GetServing, Lookup's one storage read, of a name holding a
// certificate (leaf and CA of realistic size) and a route: the same body for every
// backend, so their figures compare.
func BenchGetServing(b *testing.B, s store.Store) {
	c := cert("bench.example.com", "b", 1, base)
	c.Chain = [][]byte{derOfSize(b, 700), derOfSize(b, 900)} // P-256 leaf and CA DER sizes
	if _, _, err := s.PutCertificate(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	if err := s.SetRoute(b.Context(), store.Route{Hostname: c.Name, TenantID: "acme", Upstream: "10.0.0.1:8080"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.GetServing(b.Context(), c.Name)
		if err != nil || got.Certificate == nil || got.Route == nil {
			b.Fatalf("GetServing = %+v, %v", got, err)
		}
	}
}

// BenchPutCertificate measures storing a new certificate under a fresh name.
func BenchPutCertificate(b *testing.B, s store.Store) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, _, err := s.PutCertificate(b.Context(), cert(fmt.Sprintf("h%d.example.com", i), "x", 1, base.Add(time.Duration(i)*time.Second))); err != nil {
			b.Fatal(err)
		}
	}
}

// derOfSize is a valid DER value (an OCTET STRING) of about n bytes.
func derOfSize(b *testing.B, n int) []byte {
	out, err := asn1.Marshal(make([]byte, n-4))
	if err != nil {
		b.Fatal(err)
	}
	return out
}
