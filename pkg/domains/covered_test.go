package domains_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/domains/memstore"
	"github.com/portico-dev/portico/pkg/domains/storetest"
)

func TestWakeCovered(t *testing.T) {
	s := memstore.New()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	later := now.Add(24 * time.Hour)
	add := func(host, tenant, coveredBy string, next time.Time) {
		d := storetest.NewDomain(host, tenant)
		d.Status, d.CoveredBy, d.NextAttemptAt = domains.StatusActive, coveredBy, next
		if _, err := s.CreateDomain(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 700 { // more than one page
		add(fmt.Sprintf("h%03d.example.com", i), "acme", "*.example.com", later)
	}
	add("own.example.com", "acme", "", later)                    // has its own certificate
	add("other.example.com", "acme", "*.other.com", later)       // another wildcard
	add("elsewhere.example.com", "beta", "*.example.com", later) // another tenant's claim
	add("due.example.com", "acme", "*.example.com", now.Add(-time.Minute))

	woken, err := domains.WakeCovered(t.Context(), s, "acme", "*.example.com", now)
	if err != nil || woken != 700 {
		t.Fatalf("WakeCovered = %d, %v; want the 700 covered domains not already due", woken, err)
	}
	for host, wantDue := range map[string]bool{
		"h000.example.com": true, "h699.example.com": true, "due.example.com": true,
		"own.example.com": false, "other.example.com": false, "elsewhere.example.com": false,
	} {
		d, err := s.GetDomain(t.Context(), host)
		if err != nil {
			t.Fatal(err)
		}
		if due := !d.NextAttemptAt.After(now); due != wantDue {
			t.Errorf("%s due = %v (next %v), want %v", host, due, d.NextAttemptAt, wantDue)
		}
	}
}
