package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/localkek"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/testcert"
)

// benchCerts is how many certificates BenchmarkLookup stores: 100,000 unless
// CERTSTORE_BENCH_CERTS says otherwise (a quick run: CERTSTORE_BENCH_CERTS=2000).
func benchCerts(b *testing.B) int {
	if s := os.Getenv("CERTSTORE_BENCH_CERTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			b.Fatalf("CERTSTORE_BENCH_CERTS=%q: want a number of at least 100", s)
		}
		return n
	}
	return 100_000
}

// BenchmarkLookup measures Lookup over gRPC on loopback against real Redis holding
// benchCerts certificates (ECDSA P-256, leaf + CA, local KEK backend), one client call
// at a time, and reports p50 and p99 latency:
//
//   - cold: each name's key is not in the key cache (record read, route read, envelope
//     decryption); the cache is emptied whenever the names run out;
//   - warm: names whose keys are cached, in random order;
//   - warm-parallel: as warm, from 8 concurrent clients (a gateway fleet's misses).
//
// Not part of `make test` (no -bench there). Run:
//
//	cd services/certstore && go test -run '^$' -bench BenchmarkLookup -benchtime 20000x ./internal/server/
func BenchmarkLookup(b *testing.B) {
	n := benchCerts(b)
	c := newCluster(b)
	r := c.start(nil)
	names := populate(b, c, r, n)
	b.Logf("stored %d certificates", n)

	b.Run("cold", func(b *testing.B) {
		r.keys.Purge()
		lat := make([]time.Duration, 0, b.N)
		next := 0
		for b.Loop() {
			if next == len(names) {
				b.StopTimer()
				r.keys.Purge()
				next = 0
				b.StartTimer()
			}
			lat = append(lat, lookupOnce(b, r, names[next]))
			next++
		}
		report(b, lat)
	})

	warm := names[:min(len(names), 10_000)]
	for _, name := range warm {
		lookupOnce(b, r, name)
	}
	b.Run("warm", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			lat = append(lat, lookupOnce(b, r, warm[rng.IntN(len(warm))]))
		}
		report(b, lat)
	})
	b.Run("warm-parallel", func(b *testing.B) {
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 clients
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
			var mine []time.Duration
			for pb.Next() {
				mine = append(mine, lookupOnce(b, r, warm[rng.IntN(len(warm))]))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		report(b, lat)
	})
}

// BenchmarkLookupByStore compares warm Lookup (key cached, so the record read is what
// differs) over gRPC on loopback on Redis and on DynamoDB (dynalite, a Node.js
// implementation on this machine: it says how Portico's DynamoDB code path behaves,
// not how fast DynamoDB is), each holding 2,000 certificates, one call at a time.
//
//	cd services/certstore && go test -run '^$' -bench BenchmarkLookupByStore ./internal/server/
func BenchmarkLookupByStore(b *testing.B) {
	for _, backend := range []struct {
		name  string
		start func(testing.TB) *cluster
	}{{"redis", newCluster}, {"dynamodb", newDynamoCluster}} {
		b.Run(backend.name, func(b *testing.B) {
			c := backend.start(b)
			r := c.start(nil)
			names := populate(b, c, r, 2000)
			for _, name := range names {
				lookupOnce(b, r, name)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				lat = append(lat, lookupOnce(b, r, names[rng.IntN(len(names))]))
			}
			report(b, lat)
		})
	}
}

func lookupOnce(b *testing.B, r *replica, name string) time.Duration {
	start := time.Now()
	resp, err := r.read.Lookup(context.Background(), &certstorev1.LookupRequest{Hostname: name})
	d := time.Since(start)
	if err != nil || len(resp.GetPrivateKey()) == 0 {
		b.Fatalf("Lookup(%s): %v", name, err)
	}
	return d
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// populate stores n certificates and routes directly through the store (the benchmark
// measures Lookup, not the put path): names dNNNNNN.bench.test, each leaf signed by one
// CA; the leaves share one key pair (generating 100,000 keys adds minutes and measures
// nothing) but each key is sealed separately, so every record has its own envelope.
func populate(b *testing.B, c *cluster, r *replica, n int) []string {
	start := time.Now()
	ca := testcert.NewCA(b)
	leafKey := testcert.ECDSAKey(b)
	ring, err := localkek.LoadKeyring(c.kekFile)
	if err != nil {
		b.Fatal(err)
	}
	sealer := localkek.New(ring)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("d%06d.bench.test", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				name := names[i]
				issued := ca.Issue(b, testcert.Leaf{DNSNames: []string{name}, Key: leafKey})
				ref, err := sealer.Seal(b.Context(), name, issued.Key)
				if err == nil {
					_, _, err = r.store.PutCertificate(b.Context(), store.Certificate{
						Name: name, Chain: issued.Chain, KeyRef: ref, NotAfter: issued.Leaf.NotAfter,
						RenewTime: issued.Leaf.NotAfter.Add(-30 * 24 * time.Hour), FencingToken: 1,
					})
				}
				if err == nil {
					err = r.store.SetRoute(b.Context(), store.Route{Hostname: name, TenantID: "bench"})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("populated %d certificates in %v", n, time.Since(start).Round(time.Millisecond))
	rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return names
}
