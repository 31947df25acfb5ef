package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
)

// The throughput benchmarks run the real server against the real Redis over loopback,
// with the notary answering (an in-process fake) so that each create pays the full
// path: authentication (one Redis lookup), rate limit (one script), token, the create
// script, EnqueueDomain and the re-read. Run them with
//
//	go test -run '^$' -bench . -benchtime 5s ./services/controlapi
//
// They are not part of `make test` (benchmarks run only with -bench).

var benchRun atomic.Int64

func benchHarness(b *testing.B) (*harness, context.Context) {
	h := startControlAPI(b, harnessOptions{
		notary: serveFake(b, &notaryServiceDesc, &fakeNotary{}),
		args:   []string{"-create-rate", "off", "-log-level", "error"},
	})
	key := h.createTenant("bench")
	return h, withKey(context.Background(), key)
}

func BenchmarkCreateDomain(b *testing.B) {
	h, ctx := benchHarness(b)
	run := benchRun.Add(1)
	var n atomic.Int64
	b.SetParallelism(4) // 8 concurrent clients on 2 cores: enough to keep Redis and the server busy
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			host := fmt.Sprintf("c%d-%d.bench-example.com", run, n.Add(1))
			if _, err := h.domains.CreateDomain(ctx, &controlv1.CreateDomainRequest{Hostname: host}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

func BenchmarkGetDomain(b *testing.B) {
	h, ctx := benchHarness(b)
	const domainsToRead = 1000
	for i := range domainsToRead {
		if _, err := h.domains.CreateDomain(ctx, &controlv1.CreateDomainRequest{Hostname: fmt.Sprintf("g%d.bench-example.com", i)}); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			host := fmt.Sprintf("g%d.bench-example.com", n.Add(1)%domainsToRead)
			if _, err := h.domains.GetDomain(ctx, &controlv1.GetDomainRequest{Hostname: host}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "gets/s")
}

// BenchmarkGetDomainJSON is the same read through the JSON API (grpc-gateway and its
// loopback hop to gRPC).
func BenchmarkGetDomainJSON(b *testing.B) {
	h, ctx := benchHarness(b)
	if _, err := h.domains.CreateDomain(ctx, &controlv1.CreateDomainRequest{Hostname: "json.bench-example.com"}); err != nil {
		b.Fatal(err)
	}
	resp, err := h.tenants.RotateTenantKey(withKey(context.Background(), testAdminKey), &controlv1.RotateTenantKeyRequest{TenantId: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	key := resp.GetApiKey()
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if a := h.call("GET", "/v1/domains/json.bench-example.com", key, nil); a.status != 200 {
				b.Errorf("HTTP %d", a.status)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "gets/s")
}
