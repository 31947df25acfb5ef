package main

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/domains"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
)

// TestTXTToActiveTiming measures, for 50 domains, the time from publishing the ownership
// TXT record (and calling verify-now, as a dashboard does) to ACTIVE, against Pebble with
// one notary process. It takes about a minute, so it runs only when asked:
//
//	NOTARY_TIMING=1 go test -run TestTXTToActiveTiming -v .
//
// The figures go into docs/notary.md.
func TestTXTToActiveTiming(t *testing.T) {
	if os.Getenv("NOTARY_TIMING") == "" {
		t.Skip("opt-in: set NOTARY_TIMING=1 (takes about a minute)")
	}
	s := newStack(t, stackOptions{})
	n := s.startNotary("notary", true)
	const count = 50
	hosts := make([]string, count)
	for i := range count {
		registered := fmt.Sprintf("t%02d.test", i)
		hosts[i] = "www." + registered
		s.createDomain(hosts[i], registered)
	}
	for _, h := range hosts { // all checked once and waiting, as real domains would be
		s.waitFor(h, 30*time.Second, "checked", func(d domains.Domain) bool { return d.Progress.Failures >= 1 })
	}
	took := make([]time.Duration, count)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			registered := fmt.Sprintf("t%02d.test", i)
			start := time.Now()
			s.publishTXT(registered)
			if _, err := n.api.VerifyDomain(t.Context(), &notaryv1.VerifyDomainRequest{Hostname: h}); err != nil {
				t.Error(err)
				return
			}
			d := s.waitFor(h, 5*time.Minute, "ACTIVE", isActive)
			took[i] = d.UpdatedAt.Sub(start)
		})
	}
	wg.Wait()
	slices.Sort(took)
	p := func(q float64) time.Duration { return took[int(q*float64(count-1))] }
	t.Logf("TXT published to ACTIVE over %d domains (published together): p50 %v, p95 %v, max %v, min %v",
		count, p(0.50).Round(10*time.Millisecond), p(0.95).Round(10*time.Millisecond), took[count-1].Round(10*time.Millisecond), took[0].Round(10*time.Millisecond))
	if got := s.proxy.Orders(); got != count {
		t.Errorf("%d orders for %d domains", got, count)
	}
}
