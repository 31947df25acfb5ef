package certcache_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time               { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration)      { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)              { c.ns.Store(t.UnixNano()) }
func (c *clock) In(d time.Duration) time.Time { return c.Now().Add(d) }

// fixture holds one issued certificate that every entry built here shares: the cache
// never looks inside it, only at the entry's names, size and dates.
type fixture struct {
	t    *testing.T
	leaf testpki.Leaf
	clk  *clock
}

func newFixture(t *testing.T) *fixture {
	ca := testpki.NewCA(t)
	return &fixture{t: t, leaf: ca.Issue(t, "example.com"), clk: newClock()}
}

func (f *fixture) cache(cfg certcache.Config) *certcache.Cache {
	cfg.Now = f.clk.Now
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 100
	}
	if cfg.MaxNegative == 0 {
		cfg.MaxNegative = 100
	}
	if cfg.PositiveTTL == 0 {
		cfg.PositiveTTL = time.Hour
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = time.Minute
	}
	return certcache.New(cfg)
}

// entry is a positive entry for name served by the certificate stored under certName,
// expiring notAfterIn from the fixture's clock.
func (f *fixture) entry(name, certName string, notAfterIn time.Duration) *certcache.Entry {
	return &certcache.Entry{
		Name:     name,
		CertName: certName,
		Cert:     f.leaf.Cert,
		NotAfter: f.clk.In(notAfterIn),
		Size:     1000,
	}
}

func mustPut(t *testing.T, c *certcache.Cache, e *certcache.Entry) {
	t.Helper()
	if !c.Put(e, c.Token()) {
		t.Fatalf("Put(%s) refused", e.Name)
	}
}

func TestGetFollowsTTLsAndExpiry(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		negative bool
		notAfter time.Duration // positive entries: the certificate's remaining life
		after    time.Duration // how long after Put the Get happens
		want     certcache.State
	}{
		{name: "positive within TTL", notAfter: 90 * 24 * time.Hour, after: 59 * time.Minute, want: certcache.Fresh},
		{name: "positive past TTL is stale", notAfter: 90 * 24 * time.Hour, after: 61 * time.Minute, want: certcache.Stale},
		{name: "stale until the certificate expires", notAfter: 90 * 24 * time.Hour, after: 90*24*time.Hour - time.Second, want: certcache.Stale},
		{name: "never served past notAfter", notAfter: 90 * 24 * time.Hour, after: 90*24*time.Hour + time.Second, want: certcache.Miss},
		{name: "TTL capped by a near notAfter", notAfter: 10 * time.Minute, after: 11 * time.Minute, want: certcache.Miss},
		{name: "negative within TTL", negative: true, after: 59 * time.Second, want: certcache.Negative},
		{name: "negative past TTL is forgotten", negative: true, after: 61 * time.Second, want: certcache.Miss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.cache(certcache.Config{})
			start := f.clk.Now()
			t.Cleanup(func() { f.clk.Set(start) })
			if tt.negative {
				c.PutNegative("a.example.com", c.Token())
			} else {
				mustPut(t, c, f.entry("a.example.com", "a.example.com", tt.notAfter))
			}
			f.clk.Advance(tt.after)
			e, got := c.Get("a.example.com")
			if got != tt.want {
				t.Fatalf("Get = %v, want %v", got, tt.want)
			}
			if (e != nil) != (got == certcache.Fresh || got == certcache.Stale) {
				t.Fatalf("Get returned entry %v with state %v", e, got)
			}
			if got == certcache.Miss && (c.Len() != 0 || c.NegativeLen() != 0) {
				t.Errorf("an unusable entry stayed cached: %d positive, %d negative", c.Len(), c.NegativeLen())
			}
		})
	}
}

func TestPutRefusesExpiredCertificate(t *testing.T) {
	f := newFixture(t)
	c := f.cache(certcache.Config{})
	if c.Put(f.entry("a.example.com", "a.example.com", -time.Second), c.Token()) {
		t.Fatal("an expired certificate was cached")
	}
}

func TestBoundsEvictLeastRecentlyUsed(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name      string
		cfg       certcache.Config
		sizes     []int64 // entry i is "hN.example.com", put in order
		touch     []int   // Get these after all puts but before the last
		wantKept  []int
		wantEvict int
	}{
		{
			name:      "entry bound",
			cfg:       certcache.Config{MaxEntries: 3},
			sizes:     []int64{1, 1, 1, 1},
			wantKept:  []int{1, 2, 3},
			wantEvict: 1,
		},
		{
			name:      "a touched entry survives",
			cfg:       certcache.Config{MaxEntries: 3},
			sizes:     []int64{1, 1, 1, 1},
			touch:     []int{0},
			wantKept:  []int{0, 2, 3},
			wantEvict: 1,
		},
		{
			name:      "byte bound",
			cfg:       certcache.Config{MaxEntries: 100, MaxBytes: 2500},
			sizes:     []int64{1000, 1000, 1000},
			wantKept:  []int{1, 2},
			wantEvict: 1,
		},
		{
			name:      "a large entry pushes out several",
			cfg:       certcache.Config{MaxEntries: 100, MaxBytes: 2400},
			sizes:     []int64{500, 500, 500, 2000},
			wantKept:  []int{3},
			wantEvict: 3,
		},
		{
			name:      "an entry larger than the bound is still kept alone",
			cfg:       certcache.Config{MaxEntries: 100, MaxBytes: 100},
			sizes:     []int64{50, 1000},
			wantKept:  []int{1},
			wantEvict: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			tt.cfg.Metrics = certcache.NewMetrics(reg)
			c := f.cache(tt.cfg)
			var wantBytes int64
			for i, size := range tt.sizes {
				if i == len(tt.sizes)-1 {
					for _, j := range tt.touch {
						c.Get(fmt.Sprintf("h%d.example.com", j))
					}
				}
				name := fmt.Sprintf("h%d.example.com", i)
				e := f.entry(name, name, 24*time.Hour)
				e.Size = size
				mustPut(t, c, e)
			}
			for i := range tt.sizes {
				name := fmt.Sprintf("h%d.example.com", i)
				_, st := c.Get(name)
				kept := contains(tt.wantKept, i)
				if kept != (st == certcache.Fresh) {
					t.Errorf("%s: state %v, want kept=%v", name, st, kept)
				}
				if kept {
					wantBytes += tt.sizes[i]
				}
			}
			if got := c.Bytes(); got != wantBytes {
				t.Errorf("Bytes = %d, want %d", got, wantBytes)
			}
			if got := metricValue(t, reg, "gateway_cert_cache_evictions_total", "positive"); got != float64(tt.wantEvict) {
				t.Errorf("evictions = %v, want %d", got, tt.wantEvict)
			}
		})
	}
}

// A flood of unknown names fills the negative cache only: certificates stay.
func TestNegativeFloodDoesNotEvictCertificates(t *testing.T) {
	f := newFixture(t)
	c := f.cache(certcache.Config{MaxEntries: 10, MaxNegative: 50})
	for i := range 10 {
		name := fmt.Sprintf("h%d.example.com", i)
		mustPut(t, c, f.entry(name, name, 24*time.Hour))
	}
	for i := range 10_000 {
		c.PutNegative(fmt.Sprintf("random%d.example.com", i), c.Token())
	}
	if c.Len() != 10 {
		t.Errorf("positive entries = %d after a negative flood, want 10", c.Len())
	}
	if c.NegativeLen() != 50 {
		t.Errorf("negative entries = %d, want the bound 50", c.NegativeLen())
	}
}

func TestInvalidate(t *testing.T) {
	f := newFixture(t)
	type cached struct {
		name, certName string // certName "" for a negative entry
	}
	all := []cached{
		{"a.example.com", "a.example.com"},
		{"b.example.com", "*.example.com"},
		{"c.example.com", "*.example.com"},
		{"x.y.example.com", "x.y.example.com"},
		{"n.example.com", ""},
		{"deep.n.example.com", ""},
		{"other.org", "other.org"},
		{"m.other.org", ""},
	}
	tests := []struct {
		event   string
		dropped []string
	}{
		{event: "a.example.com", dropped: []string{"a.example.com"}},
		{event: "b.example.com", dropped: []string{"b.example.com"}},
		{event: "n.example.com", dropped: []string{"n.example.com"}},
		{event: "*.example.com", dropped: []string{"b.example.com", "c.example.com", "n.example.com"}},
		{event: "*.n.example.com", dropped: []string{"deep.n.example.com"}},
		{event: "*.other.org", dropped: []string{"m.other.org"}},
		{event: "example.com", dropped: nil},
		{event: "unrelated.net", dropped: nil},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			c := f.cache(certcache.Config{})
			for _, e := range all {
				if e.certName == "" {
					c.PutNegative(e.name, c.Token())
				} else {
					mustPut(t, c, f.entry(e.name, e.certName, 24*time.Hour))
				}
			}
			c.Invalidate(tt.event)
			for _, e := range all {
				_, st := c.Get(e.name)
				want := certcache.Fresh
				if e.certName == "" {
					want = certcache.Negative
				}
				if contains(tt.dropped, e.name) {
					want = certcache.Miss
				}
				if st != want {
					t.Errorf("%s: %v, want %v", e.name, st, want)
				}
			}
		})
	}
}

func TestResetDropsEverything(t *testing.T) {
	f := newFixture(t)
	c := f.cache(certcache.Config{})
	mustPut(t, c, f.entry("a.example.com", "a.example.com", time.Hour))
	mustPut(t, c, f.entry("b.example.com", "*.example.com", time.Hour))
	c.PutNegative("n.example.com", c.Token())
	c.Reset()
	for _, name := range []string{"a.example.com", "b.example.com", "n.example.com"} {
		if _, st := c.Get(name); st != certcache.Miss {
			t.Errorf("%s: %v after Reset", name, st)
		}
	}
	if c.Bytes() != 0 {
		t.Errorf("Bytes = %d after Reset", c.Bytes())
	}
	// The index went too: a later wildcard event touches nothing it should not.
	mustPut(t, c, f.entry("b.example.com", "b.example.com", time.Hour))
	c.Invalidate("*.example.com")
	if _, st := c.Get("b.example.com"); st != certcache.Fresh {
		t.Errorf("b.example.com (now exact) dropped by a wildcard event: %v", st)
	}
}

// An answer fetched before an invalidation that concerns it is not cached after it.
func TestPutAfterConcurrentInvalidation(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name      string
		negative  bool
		entry     [2]string // name, certName
		events    []string  // happen between Token and Put
		reset     bool
		wantKept  bool
		manyNoise int // unrelated events before the relevant ones
	}{
		{name: "no change", entry: [2]string{"a.example.com", "a.example.com"}, wantKept: true},
		{name: "unrelated change", entry: [2]string{"a.example.com", "a.example.com"}, events: []string{"b.example.com", "*.other.org"}, wantKept: true},
		{name: "same name", entry: [2]string{"a.example.com", "a.example.com"}, events: []string{"a.example.com"}},
		{name: "its wildcard certificate", entry: [2]string{"a.example.com", "*.example.com"}, events: []string{"*.example.com"}},
		{name: "a wildcard that now covers it", entry: [2]string{"a.example.com", "a.example.com"}, events: []string{"*.example.com"}},
		{name: "negative, then its certificate arrives", negative: true, entry: [2]string{"a.example.com"}, events: []string{"a.example.com"}},
		{name: "negative, then a covering wildcard arrives", negative: true, entry: [2]string{"a.example.com"}, events: []string{"*.example.com"}},
		{name: "negative, unrelated change", negative: true, entry: [2]string{"a.example.com"}, events: []string{"z.example.com"}, wantKept: true},
		{name: "reset", entry: [2]string{"a.example.com", "a.example.com"}, reset: true},
		{name: "more changes than the log holds", entry: [2]string{"a.example.com", "a.example.com"}, manyNoise: 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.cache(certcache.Config{})
			tok := c.Token()
			for i := range tt.manyNoise {
				c.Invalidate(fmt.Sprintf("noise%d.example.net", i))
			}
			for _, ev := range tt.events {
				c.Invalidate(ev)
			}
			if tt.reset {
				c.Reset()
			}
			var kept bool
			if tt.negative {
				kept = c.PutNegative(tt.entry[0], tok)
			} else {
				kept = c.Put(f.entry(tt.entry[0], tt.entry[1], time.Hour), tok)
			}
			if kept != tt.wantKept {
				t.Fatalf("Put kept = %v, want %v", kept, tt.wantKept)
			}
			_, st := c.Get(tt.entry[0])
			if (st != certcache.Miss) != tt.wantKept {
				t.Fatalf("state %v after Put kept=%v", st, kept)
			}
		})
	}
}

func TestClaimRefreshOncePerBackoff(t *testing.T) {
	f := newFixture(t)
	e := f.entry("a.example.com", "a.example.com", time.Hour)
	now := f.clk.Now()
	if !e.ClaimRefresh(now, 5*time.Second) {
		t.Fatal("first claim refused")
	}
	if e.ClaimRefresh(now.Add(4*time.Second), 5*time.Second) {
		t.Fatal("second claim within the backoff granted")
	}
	if !e.ClaimRefresh(now.Add(5*time.Second), 5*time.Second) {
		t.Fatal("claim after the backoff refused")
	}
	var granted atomic.Int32
	var wg sync.WaitGroup
	later := now.Add(time.Minute)
	for range 100 {
		wg.Go(func() {
			if e.ClaimRefresh(later, 5*time.Second) {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 1 {
		t.Fatalf("%d concurrent claims granted, want 1", granted.Load())
	}
}

// The cache under concurrent readers, writers and invalidations: run with -race.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	c := f.cache(certcache.Config{MaxEntries: 50, MaxBytes: 40_000, MaxNegative: 50})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				name := fmt.Sprintf("h%d.example.com", (i*7+w)%120)
				switch i % 5 {
				case 0:
					c.Put(f.entry(name, "*.example.com", time.Hour), c.Token())
				case 1:
					c.PutNegative("n"+name, c.Token())
				case 2:
					c.Invalidate(name)
				case 3:
					if i%100 == 3 {
						c.Invalidate("*.example.com")
					}
				default:
					c.Get(name)
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 50 || c.NegativeLen() > 50 || c.Bytes() > 40_000 {
		t.Fatalf("bounds broken: %d entries, %d negative, %d bytes", c.Len(), c.NegativeLen(), c.Bytes())
	}
	if c.Bytes() != int64(c.Len())*1000 {
		t.Fatalf("byte count %d drifted from %d entries of 1000", c.Bytes(), c.Len())
	}
}

// TestEstimateSizeMatchesHeap checks that EstimateSize is not below what a cached
// certificate really holds on the heap, so that -cache-max-bytes is a true bound. The
// chains arrive as certstore sends them, each with its own copy of the CA, read inside
// the measured window as if from the network.
func TestEstimateSizeMatchesHeap(t *testing.T) {
	ca := testpki.NewCA(t)
	for _, kt := range []struct {
		name string
		key  testpki.KeyType
		n    int // RSA keys are slow to generate
	}{{"ecdsa-p256", testpki.ECDSAP256, 200}, {"rsa-2048", testpki.RSA2048, 25}} {
		t.Run(kt.name, func(t *testing.T) {
			dir := t.TempDir()
			for i := range kt.n {
				l := ca.IssueWith(t, testpki.Options{Key: kt.key}, fmt.Sprintf("host%d.example.com", i))
				for j, b := range [][]byte{l.Chain[0], l.Chain[1], l.Key} {
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.%d", i, j)), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			read := func(i, j int) []byte {
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.%d", i, j)))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			c := certcache.New(certcache.Config{MaxEntries: 10 * kt.n, PositiveTTL: time.Hour})
			before := heapInUse()
			var estimated int64
			for i := range kt.n {
				cert, leaf, err := certcache.ParseCertificate([][]byte{read(i, 0), read(i, 1)}, read(i, 2))
				if err != nil {
					t.Fatal(err)
				}
				// Sign once, as a handshake would: crypto keeps a converted key per
				// private key from the first signature on.
				digest := sha256.Sum256([]byte("handshake transcript"))
				if _, err := cert.PrivateKey.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("host%d.example.com", i)
				e := &certcache.Entry{Name: name, CertName: name, Cert: cert, NotAfter: leaf.NotAfter, Size: certcache.EstimateSize(cert)}
				estimated += e.Size
				if !c.Put(e, c.Token()) {
					t.Fatal("Put refused")
				}
			}
			after := heapInUse()
			runtime.KeepAlive(c)
			perEntry := (after - before) / int64(kt.n)
			t.Logf("%s: heap %d B per cached certificate, estimate %d B", kt.name, perEntry, estimated/int64(kt.n))
			if estimated/int64(kt.n) < perEntry {
				t.Errorf("EstimateSize %d B is below the measured %d B per entry", estimated/int64(kt.n), perEntry)
			}
			if estimated/int64(kt.n) > 2*perEntry {
				t.Errorf("EstimateSize %d B is more than twice the measured %d B per entry", estimated/int64(kt.n), perEntry)
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkGetHit is the cache half of a cached handshake: it must not allocate.
func BenchmarkGetHit(b *testing.B) {
	ca := testpki.NewCA(b)
	leaf := ca.Issue(b, "example.com")
	c := certcache.New(certcache.Config{MaxEntries: 20_000, PositiveTTL: time.Hour, Metrics: certcache.NewMetrics(prometheus.NewRegistry())})
	names := make([]string, 10_000)
	for i := range names {
		names[i] = fmt.Sprintf("d%05d.bench.test", i)
		c.Put(&certcache.Entry{Name: names[i], CertName: names[i], Cert: leaf.Cert, NotAfter: leaf.NotAfter, Size: 4000}, c.Token())
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, st := c.Get(names[i%len(names)]); st != certcache.Fresh {
			b.Fatal(st)
		}
		i++
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// metricValue reads a counter's value from reg by name and one label value.
func metricValue(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == labelValue {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
