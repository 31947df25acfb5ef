package handshake_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/services/gateway/internal/certcache"
	"github.com/portico-dev/portico/services/gateway/internal/certsource"
	"github.com/portico-dev/portico/services/gateway/internal/fakecertstore"
	"github.com/portico-dev/portico/services/gateway/internal/handshake"
	"github.com/portico-dev/portico/services/gateway/internal/rawtls"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// rig is a selector over a fake certstore, behind a real TLS listener on loopback.
type rig struct {
	ca    *testpki.CA
	store *fakecertstore.Server
	cache *certcache.Cache
	sel   *handshake.Selector
	addr  string
}

func newRig(t *testing.T, cacheCfg certcache.Config, cfg handshake.Config) *rig {
	t.Helper()
	r := &rig{ca: testpki.NewCA(t), store: fakecertstore.Start(t)}
	if cacheCfg.MaxEntries == 0 {
		cacheCfg.MaxEntries = 1000
	}
	if cacheCfg.MaxNegative == 0 {
		cacheCfg.MaxNegative = 1000
	}
	if cacheCfg.PositiveTTL == 0 {
		cacheCfg.PositiveTTL = time.Hour
	}
	if cacheCfg.NegativeTTL == 0 {
		cacheCfg.NegativeTTL = time.Minute
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	r.cache = certcache.New(cacheCfg)
	r.sel = handshake.New(r.cache, certsource.New(r.store.Client(t), log, nil), cfg, log, nil)
	t.Cleanup(r.sel.Close)

	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.sel.GetCertificate,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	r.addr = lis.Addr().String()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("x")) // lets a TLS 1.3 client see the server's verdict on its Finished
				}
			}()
		}
	}()
	return r
}

// dial handshakes with serverName and returns the leaf's DNS names.
func (r *rig) dial(t *testing.T, serverName string) ([]string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 60 * time.Second}, "tcp", r.addr, &tls.Config{
		ServerName: serverName,
		RootCAs:    r.ca.Pool,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].DNSNames, nil
}

func TestHandshakeTable(t *testing.T) {
	r := newRig(t, certcache.Config{}, handshake.Config{})
	r.store.Put("shop.example.com", r.ca.Issue(t, "shop.example.com"))
	r.store.Put("*.example.org", r.ca.Issue(t, "*.example.org"))

	tests := []struct {
		name        string
		raw         bool   // send the SNI bytes as given, with rawtls (crypto/tls clients rewrite some)
		sni         string // "" with raw: no server_name extension at all
		wantCert    string // the certificate's first DNS name; "" when refused
		wantAlert   uint8  // raw probes only
		wantLookups int64
	}{
		{name: "known", sni: "shop.example.com", wantCert: "shop.example.com", wantLookups: 1},
		{name: "known again is cached", sni: "shop.example.com", wantCert: "shop.example.com"},
		{name: "upper case", sni: "SHOP.Example.COM", wantCert: "shop.example.com"},
		{name: "upper case on the wire", raw: true, sni: "Shop.EXAMPLE.com", wantCert: "shop.example.com"},
		{name: "trailing dot (the client drops it)", sni: "shop.example.com.", wantCert: "shop.example.com"},
		{name: "trailing dot on the wire is refused by crypto/tls (RFC 6066)", raw: true, sni: "shop.example.com.", wantAlert: rawtls.AlertDecodeError},
		{name: "wildcard-covered", sni: "a.example.org", wantCert: "*.example.org", wantLookups: 1},
		{name: "another name under the wildcard", sni: "b.example.org", wantCert: "*.example.org", wantLookups: 1},
		{name: "wildcard does not cover two labels down", sni: "x.a.example.org", wantLookups: 1},
		{name: "the wildcard's own base is not covered", sni: "example.org", wantLookups: 1},
		{name: "unknown", sni: "nobody.example.net", wantLookups: 1},
		{name: "unknown again is cached negative", sni: "nobody.example.net"},
		{name: "missing SNI", raw: true, sni: "", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "IPv4 SNI", raw: true, sni: "127.0.0.1", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "IPv6 SNI", raw: true, sni: "::1", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "numeric last label", raw: true, sni: "shop.example.123", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "invalid character", raw: true, sni: "shop_1.example.com", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "single label", raw: true, sni: "localhost", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "public suffix", raw: true, sni: "co.uk", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "unknown TLD", raw: true, sni: "shop.example.internal", wantAlert: rawtls.AlertUnrecognizedName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.store.Lookups()
			var got string
			if tt.raw {
				reply, err := rawtls.Probe(r.addr, tt.sni, tt.sni != "")
				if err != nil {
					t.Fatal(err)
				}
				if reply.Alert != tt.wantAlert {
					t.Errorf("alert = %d, want %d", reply.Alert, tt.wantAlert)
				}
				if reply.Leaf != nil {
					got = reply.Leaf.DNSNames[0]
				}
			} else {
				names, err := r.dial(t, tt.sni)
				if (err == nil) != (tt.wantCert != "") {
					t.Fatalf("handshake error = %v, want success %v", err, tt.wantCert != "")
				}
				if err != nil && !isUnrecognizedName(err) {
					t.Errorf("handshake failed with %v, want the unrecognized_name alert", err)
				}
				if len(names) > 0 {
					got = names[0]
				}
			}
			if got != tt.wantCert {
				t.Errorf("certificate for %q = %q, want %q", tt.sni, got, tt.wantCert)
			}
			if n := r.store.Lookups() - before; n != tt.wantLookups {
				t.Errorf("certstore lookups = %d, want %d", n, tt.wantLookups)
			}
		})
	}
}

// isUnrecognizedName reports whether a client's handshake error is the server's
// unrecognized_name alert (crypto/tls keeps the received alert's type unexported).
func isUnrecognizedName(err error) bool {
	return strings.HasSuffix(err.Error(), "remote error: tls: unrecognized name")
}

// Concurrent handshakes for one cold name, all arriving while the lookup is out, cause
// one certstore Lookup. (The 1,000-handshake version runs against the real certstore in
// TestColdNameConcurrentHandshakesOneLookup.)
func TestConcurrentMissesCoalesce(t *testing.T) {
	// A generous timeout: 1,000 handshakes under the race detector can starve the
	// lookup's goroutine of CPU on a busy machine.
	r := newRig(t, certcache.Config{}, handshake.Config{LookupTimeout: 30 * time.Second})
	r.store.Put("cold.example.com", r.ca.Issue(t, "cold.example.com"))
	r.sel.Resolve(t.Context(), "warm-up.example.com") // connects the gRPC channel first
	before := r.store.Lookups()
	r.store.SetDelay(300 * time.Millisecond) // every handshake arrives while the lookup is out

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			names, err := r.dial(t, "cold.example.com")
			if err == nil && names[0] != "cold.example.com" {
				err = fmt.Errorf("wrong certificate %v", names)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := r.store.Lookups() - before; got != 1 {
		t.Fatalf("%d concurrent handshakes made %d certstore lookups, want 1", n, got)
	}
}

// One waiter giving up does not fail the lookup the others wait for.
func TestAbandonedWaiterDoesNotCancelLookup(t *testing.T) {
	r := newRig(t, certcache.Config{}, handshake.Config{})
	r.store.Put("slow.example.com", r.ca.Issue(t, "slow.example.com"))
	r.store.SetDelay(300 * time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var patientErr error
	wg.Go(func() {
		_, _, patientErr = r.sel.Resolve(t.Context(), "slow.example.com")
	})
	time.Sleep(10 * time.Millisecond)
	_, res, err := r.sel.Resolve(ctx, "slow.example.com")
	if !errkind.Is(err, errkind.DeadlineExceeded) || res != handshake.ResultUnavailable {
		t.Fatalf("impatient caller: %v %v, want a deadline error", res, err)
	}
	wg.Wait()
	if patientErr != nil {
		t.Fatalf("patient caller failed: %v", patientErr)
	}
	if r.store.Lookups() != 1 {
		t.Fatalf("lookups = %d, want 1", r.store.Lookups())
	}
}

// With certstore gone, cached names keep serving (fresh or stale) and uncached ones fail
// at once; when it is back, stale entries are refreshed in the background.
func TestCertstoreOutage(t *testing.T) {
	r := newRig(t, certcache.Config{PositiveTTL: 200 * time.Millisecond}, handshake.Config{RefreshBackoff: 50 * time.Millisecond})
	r.store.Put("cached.example.com", r.ca.Issue(t, "cached.example.com"))
	r.store.Put("uncached.example.com", r.ca.Issue(t, "uncached.example.com"))
	if _, err := r.dial(t, "cached.example.com"); err != nil {
		t.Fatal(err)
	}
	r.store.Stop()

	if _, err := r.dial(t, "cached.example.com"); err != nil {
		t.Fatalf("fresh cached name during the outage: %v", err)
	}
	start := time.Now()
	_, err := r.dial(t, "uncached.example.com")
	if err == nil {
		t.Fatal("an uncached name was served with certstore down")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("uncached name failed after %v, want fast", took)
	}

	time.Sleep(300 * time.Millisecond) // past the positive TTL: the entry is stale
	if _, st := r.cache.Get("cached.example.com"); st != certcache.Stale {
		t.Fatalf("entry is %v, want stale", st)
	}
	for range 3 {
		if _, err := r.dial(t, "cached.example.com"); err != nil {
			t.Fatalf("stale cached name during the outage: %v", err)
		}
		time.Sleep(60 * time.Millisecond)
	}

	before := r.store.Lookups()
	r.store.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := r.dial(t, "cached.example.com"); err != nil {
			t.Fatalf("stale cached name after the outage: %v", err)
		}
		if _, st := r.cache.Get("cached.example.com"); st == certcache.Fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stale entry was never refreshed after certstore came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.store.Lookups() == before {
		t.Fatal("refreshed without a lookup")
	}
}

// A stale entry whose certificate was deleted while the Watch event was missed becomes
// a negative entry on refresh.
func TestStaleRefreshFindsCertificateGone(t *testing.T) {
	r := newRig(t, certcache.Config{PositiveTTL: 50 * time.Millisecond}, handshake.Config{RefreshBackoff: time.Millisecond})
	r.store.Put("gone.example.com", r.ca.Issue(t, "gone.example.com"))
	if _, err := r.dial(t, "gone.example.com"); err != nil {
		t.Fatal(err)
	}
	r.store.Delete("gone.example.com") // nobody watches in this test: the cache is not told
	time.Sleep(80 * time.Millisecond)
	if _, err := r.dial(t, "gone.example.com"); err != nil {
		t.Fatalf("stale entry not served: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, st := r.cache.Get("gone.example.com"); st == certcache.Negative {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh did not replace the deleted certificate with a negative entry")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLookupBounds(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		r := newRig(t, certcache.Config{}, handshake.Config{LookupTimeout: 200 * time.Millisecond})
		r.store.Put("slow.example.com", r.ca.Issue(t, "slow.example.com"))
		r.store.SetDelay(5 * time.Second)
		start := time.Now()
		_, res, err := r.sel.Resolve(t.Context(), "slow.example.com")
		if res != handshake.ResultUnavailable || !errkind.Is(err, errkind.DeadlineExceeded) {
			t.Fatalf("Resolve = %v, %v; want unavailable by deadline", res, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("gave up after %v, want about the 200ms timeout", took)
		}
	})
	t.Run("lookups in flight", func(t *testing.T) {
		r := newRig(t, certcache.Config{}, handshake.Config{MaxLookups: 2})
		r.store.SetDelay(500 * time.Millisecond)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { r.sel.Resolve(t.Context(), fmt.Sprintf("busy%d.example.com", i)) })
		}
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		_, res, err := r.sel.Resolve(t.Context(), "third.example.com")
		if res != handshake.ResultUnavailable || !errkind.Is(err, errkind.Unavailable) {
			t.Fatalf("third lookup: %v, %v; want unavailable", res, err)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("third lookup waited %v instead of failing at once", took)
		}
		wg.Wait()
	})
	t.Run("certstore error is not cached", func(t *testing.T) {
		r := newRig(t, certcache.Config{}, handshake.Config{})
		r.store.Put("flaky.example.com", r.ca.Issue(t, "flaky.example.com"))
		r.store.SetFailure(codes.Internal)
		if _, res, _ := r.sel.Resolve(t.Context(), "flaky.example.com"); res != handshake.ResultUnavailable {
			t.Fatalf("first: %v, want unavailable", res)
		}
		r.store.SetFailure(codes.OK)
		if _, res, err := r.sel.Resolve(t.Context(), "flaky.example.com"); res != handshake.ResultFetched {
			t.Fatalf("second: %v %v, want fetched", res, err)
		}
	})
}

// A certificate that does not cover the name it was looked up for is never served.
func TestMismatchedAnswerRefused(t *testing.T) {
	r := newRig(t, certcache.Config{}, handshake.Config{})
	r.store.Put("a.example.com", r.ca.Issue(t, "b.example.com"))
	_, res, err := r.sel.Resolve(t.Context(), "a.example.com")
	if res != handshake.ResultUnavailable || !errkind.Is(err, errkind.Internal) {
		t.Fatalf("Resolve = %v, %v; want unavailable with an internal error", res, err)
	}
	if r.cache.Len() != 0 || r.cache.NegativeLen() != 0 {
		t.Fatal("an unusable answer was cached")
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"a.example.com", true},
		{"xn--bcher-kva.example", true},
		{"d00001.bench.test", true},
		{"", false},
		{"A.example.com", false},
		{"a.example.com.", false},
		{"a_b.example.com", false},
		{"bücher.example", false},
		{"a.example.com:443", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := handshake.Canonical(tt.in); got != tt.want {
				t.Errorf("Canonical(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestExtraTLDs(t *testing.T) {
	r := newRig(t, certcache.Config{}, handshake.Config{Policy: hostname.Policy{ExtraTLDs: []string{"test"}}})
	r.store.Put("d00001.bench.test", r.ca.Issue(t, "d00001.bench.test"))
	if names, err := r.dial(t, "d00001.bench.test"); err != nil || names[0] != "d00001.bench.test" {
		t.Fatalf("names %v, err %v", names, err)
	}
}

// BenchmarkGetCertificateCached is the cached certificate selection of a handshake: SNI
// check, cache lookup, metrics. It must report 0 allocs/op.
func BenchmarkGetCertificateCached(b *testing.B) {
	for _, bc := range []struct {
		name string
		sni  func(i int) string
	}{
		{"canonical", func(i int) string { return fmt.Sprintf("d%05d.bench.test", i) }},
		{"upper-case", func(i int) string { return fmt.Sprintf("D%05d.Bench.Test", i) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ca := testpki.NewCA(b)
			leaf := ca.Issue(b, "example.com")
			cache := certcache.New(certcache.Config{MaxEntries: 20_000, PositiveTTL: time.Hour})
			sel := handshake.New(cache, nil, handshake.Config{Policy: hostname.Policy{ExtraTLDs: []string{"test"}}}, zap.NewNop(), nil)
			defer sel.Close()
			hellos := make([]*tls.ClientHelloInfo, 10_000)
			for i := range hellos {
				name := fmt.Sprintf("d%05d.bench.test", i)
				cache.Put(&certcache.Entry{Name: name, CertName: name, Cert: leaf.Cert, NotAfter: leaf.NotAfter, Size: 4000}, cache.Token())
				hellos[i] = &tls.ClientHelloInfo{ServerName: bc.sni(i)}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c, err := sel.GetCertificate(hellos[i%len(hellos)])
				if c == nil || err != nil {
					b.Fatal(c, err)
				}
				i++
			}
		})
	}
}
