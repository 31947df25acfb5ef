package main

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/tls"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/gateway/internal/rawtls"
	"github.com/portico-dev/portico/services/gateway/internal/testpki"
)

// TestHandshakeWithRealCertstore is the handshake table against the real certstore:
// which certificate each SNI gets, and how many Lookups certstore saw for it.
func TestHandshakeWithRealCertstore(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	ca := testpki.NewCA(t)
	cs.put(ca, "shop.example.com", nil)
	cs.put(ca, "*.example.org", nil)
	up := startRecorder(t, "upstream", nil)
	gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", true)

	tests := []struct {
		name        string
		raw         bool   // send the SNI bytes as given (crypto/tls clients rewrite some)
		sni         string // with raw, "" sends no server_name extension
		wantCert    string // first DNS name of the certificate served; "" for a refusal
		wantAlert   uint8  // raw probes
		wantLookups int
	}{
		{name: "known", sni: "shop.example.com", wantCert: "shop.example.com", wantLookups: 1},
		{name: "known, cached", sni: "shop.example.com", wantCert: "shop.example.com"},
		{name: "upper-case SNI", sni: "SHOP.Example.Com", wantCert: "shop.example.com"},
		{name: "upper-case SNI on the wire", raw: true, sni: "shop.EXAMPLE.com", wantCert: "shop.example.com"},
		{name: "trailing-dot name (clients drop the dot from SNI)", sni: "shop.example.com.", wantCert: "shop.example.com"},
		{name: "trailing-dot SNI on the wire is refused (RFC 6066)", raw: true, sni: "shop.example.com.", wantAlert: rawtls.AlertDecodeError},
		{name: "wildcard-covered", sni: "any.example.org", wantCert: "*.example.org", wantLookups: 1},
		{name: "wildcard covers one label only", sni: "a.b.example.org", wantLookups: 1},
		{name: "unknown", sni: "unknown.example.net", wantLookups: 1},
		{name: "unknown, cached negative", sni: "unknown.example.net"},
		{name: "missing SNI", raw: true, sni: "", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "IP SNI", raw: true, sni: "127.0.0.1", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "IPv6 SNI", raw: true, sni: "::1", wantAlert: rawtls.AlertUnrecognizedName},
		{name: "invalid name", raw: true, sni: "bad_name.example.com", wantAlert: rawtls.AlertUnrecognizedName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cs.lookups()
			var got string
			if tt.raw {
				reply, err := rawtls.Probe(gw.https, tt.sni, tt.sni != "")
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
				name, err := gw.handshake(tt.sni)
				if err != nil && !strings.Contains(err.Error(), "unrecognized name") {
					t.Fatalf("handshake failed with %v, want success or unrecognized_name", err)
				}
				got = name
			}
			if got != tt.wantCert {
				t.Errorf("certificate = %q, want %q", got, tt.wantCert)
			}
			if n := cs.lookups() - before; n != tt.wantLookups {
				t.Errorf("certstore Lookups = %d, want %d", n, tt.wantLookups)
			}
		})
	}
}

// TestColdNameConcurrentHandshakesOneLookup: 1,000 handshakes for one cold name, all
// sent at once, make one Lookup at certstore.
func TestColdNameConcurrentHandshakesOneLookup(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	ca := testpki.NewCA(t)
	cs.put(ca, "cold.example.com", nil)
	up := startRecorder(t, "upstream", nil)
	gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", true)

	const n = 1000
	// Connect everything first, then release every ClientHello together.
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", gw.https, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	before := cs.lookups()
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			tc := tls.Client(c, &tls.Config{ServerName: "cold.example.com", RootCAs: ca.Pool})
			c.SetDeadline(time.Now().Add(60 * time.Second))
			<-start
			if err := tc.Handshake(); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("handshake: %v", err)
	}
	if got := cs.lookups() - before; got != 1 {
		t.Fatalf("%d concurrent handshakes for a cold name made %d Lookups, want 1", n, got)
	}
	t.Logf("handshakes that waited for the one Lookup: %v; served from the cache after it: %v",
		gw.metric("gateway_tls_handshakes_total", `result="fetched"`), gw.metric("gateway_tls_handshakes_total", `result="hit"`))
}

// TestCertstoreStoppedCachedNamesServe: with certstore stopped, cached names keep
// serving, uncached ones fail fast, and once it is back new names are served again.
func TestCertstoreStoppedCachedNamesServe(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	ca := testpki.NewCA(t)
	cs.put(ca, "cached.example.com", nil)
	cs.put(ca, "uncached.example.com", nil)
	up := startRecorder(t, "upstream", nil)
	gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", true)
	if _, err := gw.handshake("cached.example.com"); err != nil {
		t.Fatal(err)
	}

	cs.stop()
	for range 3 {
		if name, err := gw.handshake("cached.example.com"); err != nil || name != "cached.example.com" {
			t.Fatalf("cached name with certstore stopped: %q, %v", name, err)
		}
		code, body, _ := do(t, gw.client("cached.example.com", false), "GET", "https://cached.example.com/", nil)
		if code != 200 || body != "upstream" {
			t.Fatalf("request on a cached name with certstore stopped: %d %q", code, body)
		}
	}
	start := time.Now()
	if _, err := gw.handshake("uncached.example.com"); err == nil {
		t.Fatal("an uncached name was served with certstore stopped")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("uncached name failed after %v; want fast", took)
	}
	if gw.readyz() != 200 {
		t.Error("not ready with a warm cache and certstore stopped")
	}
	// Port 80 cannot tell an unknown host from an unreachable certstore: 503, not 404.
	if code, body, h := do(t, gw.plainClient(), "GET", "http://uncached.example.com/", nil); code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("plain HTTP for an uncached host with certstore stopped: %d %q, want 503 with Retry-After", code, body)
	}

	cs.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		name, err := gw.handshake("uncached.example.com")
		if err == nil && name == "uncached.example.com" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uncached name still failing after certstore came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNewCertificateServedWithinASecond: a name refused (and cached as unknown) is
// served within a second of its certificate being put in certstore, through Watch.
func TestNewCertificateServedWithinASecond(t *testing.T) {
	cs := startCertstore(t, certstoreOptions{})
	ca := testpki.NewCA(t)
	up := startRecorder(t, "upstream", nil)
	gw := startGateway(t, ca, cs.addr, up.addr, "127.0.0.1:1", true)

	tests := []struct {
		name    string
		put     string // the certificate's name
		request string // the SNI
	}{
		{name: "exact", put: "new.example.com", request: "new.example.com"},
		{name: "wildcard covering a name cached as unknown", put: "*.wild.example.com", request: "a.wild.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gw.handshake(tt.request); err == nil {
				t.Fatal("served before the certificate was put")
			}
			cs.put(ca, tt.put, nil)
			put := time.Now()
			for {
				name, err := gw.handshake(tt.request)
				if err == nil && name == tt.put {
					t.Logf("served %v after the put", time.Since(put).Round(time.Millisecond))
					break
				}
				if time.Since(put) > time.Second {
					t.Fatalf("not served within a second of the put (negative TTL is a minute): %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	t.Run("a removed route stops the name", func(t *testing.T) {
		cs.put(ca, "leaving.example.com", nil)
		if _, err := gw.handshake("leaving.example.com"); err != nil {
			t.Fatal(err)
		}
		conn := cs.dial()
		defer conn.Close()
		if _, err := certstorev1.NewCertWriteServiceClient(conn).DeleteRoute(t.Context(), &certstorev1.DeleteRouteRequest{Hostname: "leaving.example.com"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			if _, err := gw.handshake("leaving.example.com"); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still served a second after its route was deleted")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
