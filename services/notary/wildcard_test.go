package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"github.com/miekg/dns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/domains"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
	"github.com/portico-dev/portico/pkg/proctest"
)

// The wildcard tests run the whole DNS-01 path on loopback: Pebble asks the resolver
// stand-in (dnstest), which asks challtestsrv for the customer's zone and follows the
// `_acme-challenge` CNAME into the delegation zone, answered by the notary's built-in
// DNS server from the answers lego's provider stored in Redis.

// createWildcard plays controlapi for a wildcard kind: the record with a random
// delegation label (80 bits, lowercase base32, as controlapi draws it).
func (s *stack) createWildcard(host string, kind domains.Kind, registered string) domains.Domain {
	s.t.Helper()
	b := make([]byte, 10)
	rand.Read(b)
	now := time.Now()
	d, err := s.store.CreateDomain(s.t.Context(), domains.Domain{
		Hostname: host, TenantID: "acme", Kind: kind, RegisteredDomain: registered,
		Status: domains.StatusPendingVerification, VerificationToken: tenantToken(registered),
		DelegationLabel: strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)),
		RedirectHTTPS:   true, NextAttemptAt: now, VerifyDeadline: now.Add(7 * 24 * time.Hour), CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// delegate publishes the customer's one-time CNAME for d.
func (s *stack) delegate(d domains.Domain) {
	base := strings.TrimPrefix(d.Hostname, "*.")
	s.env.SetCNAME(s.t, "_acme-challenge."+base, d.DelegationLabel+"."+delegationZone)
}

// txtAnswers counts the TXT questions about label the resolver forwarded to the
// notary's server and got answers to, and the most answers one of them had.
func (s *stack) txtAnswers(label string) (answered, most int) {
	name := label + "." + delegationZone + "."
	for _, q := range s.resolver.DelegatedQueries() {
		if q.Name == name && q.Type == dns.TypeTXT && q.Answers > 0 {
			answered++
			most = max(most, q.Answers)
		}
	}
	return answered, most
}

func (s *stack) notFound(host string) {
	s.t.Helper()
	_, err := s.reads.Lookup(s.t.Context(), &certstorev1.LookupRequest{Hostname: host})
	if status.Code(err) != codes.NotFound {
		s.t.Fatalf("Lookup(%s) = %v, want NOT_FOUND", host, err)
	}
}

func certNames(d domains.Domain) []string {
	n := slices.Clone(d.Certificate.DNSNames)
	slices.Sort(n)
	return n
}

// gateway is the real gateway binary in front of certstore, with an upstream that
// echoes the Host it was sent.
type gateway struct {
	https string
}

// gatewayBin is the gateway binary built with the others.
func gatewayBin(t *testing.T) string {
	t.Helper()
	return proctest.Build(t, "gateway")
}

func (s *stack) startGateway() *gateway {
	t := s.t
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s", r.Host)
	}))
	t.Cleanup(up.Close)
	https, health := proctest.FreeAddr(t), proctest.FreeAddr(t)
	p := proctest.Start(t, "gateway", gatewayBin(t), nil, "-https-listen", https, "-http-listen", proctest.FreeAddr(t),
		"-admin-listen", proctest.FreeAddr(t), "-health-listen", health, "-certstore-addr", s.certstore,
		"-upstream", strings.TrimPrefix(up.URL, "http://"), "-hostname-extra-tlds", "test", "-log-level", "warn")
	waitServing(t, p, health)
	return &gateway{https: https}
}

// handshake connects to the gateway with SNI name and verifies the chain it serves
// against Pebble's root for that name.
func (g *gateway) handshake(s *stack, name string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.https, &tls.Config{
		ServerName: name, RootCAs: s.env.RootPool(s.t), MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// get sends GET https://name/ through the gateway and returns the body.
func (g *gateway) get(s *stack, name string) string {
	s.t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.env.RootPool(s.t), MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, g.https)
		},
	}}
	resp, err := client.Get("https://" + name + "/")
	if err != nil {
		s.t.Fatalf("GET https://%s/ through the gateway: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET https://%s/: %s %s", name, resp.Status, b)
	}
	return string(b)
}

// TestWildcardThroughDelegation is issue 11's "done when" for a WILDCARD domain: a
// missing CNAME is reported before any order is placed; once published, the wildcard
// certificate (`*.wild.test` and `wild.test`) is issued by DNS-01 answered by the
// built-in server, chains to Pebble's root, and `a.wild.test` and `b.wild.test` are
// served from it through the real gateway while `x.y.wild.test` is not; a subdomain the
// tenant adds goes straight to serving; renewal goes through the delegation again; and a
// delegation removed shows up in re-verification (MOVED at the threshold, 1 here).
func TestWildcardThroughDelegation(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{delegation: true})
	s.publishTXT("wild.test")
	n := s.startNotary("notary", true, "-renewal-info-interval", "1s", "-reverify-interval", "4s", "-reverify-failures", "1")
	d := s.createWildcard("*.wild.test", domains.KindWildcard, "wild.test")

	// No CNAME yet: verified, then refused by pre-flight with what is missing; no order.
	target := d.DelegationLabel + "." + delegationZone
	wantReason := "pre-flight (delegation): no CNAME at _acme-challenge.wild.test; publish _acme-challenge.wild.test CNAME " + target
	failed := s.waitFor(d.Hostname, 30*time.Second, "FAILED by pre-flight", func(d domains.Domain) bool { return d.Status == domains.StatusFailed })
	if failed.LastError != wantReason || failed.VerifiedAt.IsZero() {
		t.Fatalf("record %+v; want verified and FAILED with %q", failed, wantReason)
	}
	if o := s.proxy.Orders(); o != 0 {
		t.Fatalf("%d orders placed without the delegation, want none", o)
	}

	// The customer publishes the CNAME and asks to check again.
	s.delegate(d)
	published := time.Now()
	if _, err := n.api.VerifyDomain(t.Context(), &notaryv1.VerifyDomainRequest{Hostname: d.Hostname}); err != nil {
		t.Fatal(err)
	}
	active := s.waitFor(d.Hostname, 60*time.Second, "ACTIVE", isActive)
	t.Logf("CNAME published and verify-now to ACTIVE: %v", time.Since(published).Round(time.Millisecond))
	if got := certNames(active); !slices.Equal(got, []string{"*.wild.test", "wild.test"}) {
		t.Fatalf("certificate names %q, want *.wild.test and wild.test", got)
	}
	if o := s.proxy.Orders(); o != 1 {
		t.Fatalf("%d orders, want 1", o)
	}
	answered, most := s.txtAnswers(d.DelegationLabel)
	if answered == 0 || most != 2 {
		t.Fatalf("the built-in server answered %d TXT questions at the label, at most %d values at once; want the two answers (apex and wildcard) together", answered, most)
	}
	if keys, _ := s.rdb.Keys(t.Context(), s.prefix+":notary:dns01:*").Result(); len(keys) != 0 {
		t.Fatalf("DNS-01 answers left after the order: %v", keys)
	}

	// certstore serves every one-label subdomain from it, never deeper.
	leaf := s.served("a.wild.test")
	s.served("b.wild.test")
	s.notFound("x.y.wild.test")

	// Through the real gateway.
	gw := s.startGateway()
	for _, name := range []string{"a.wild.test", "b.wild.test"} {
		got, err := gw.handshake(s, name)
		if err != nil {
			t.Fatalf("TLS to the gateway as %s: %v", name, err)
		}
		if !got.Equal(leaf) {
			t.Fatalf("%s: the gateway served serial %s, want the wildcard %s", name, got.SerialNumber.Text(16), leaf.SerialNumber.Text(16))
		}
	}
	if _, err := gw.handshake(s, "x.y.wild.test"); err == nil {
		t.Fatal("the gateway completed a handshake for x.y.wild.test")
	}
	if body := gw.get(s, "a.wild.test"); body != "upstream saw a.wild.test" {
		t.Fatalf("GET https://a.wild.test/ answered %q", body)
	}

	// A subdomain the same tenant adds is served at once, by the wildcard.
	s.createDomain("shop.wild.test", "wild.test")
	resp, err := n.api.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "shop.wild.test"})
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.GetProgress(); p.GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_ACTIVE || p.GetCoveredBy() != "*.wild.test" {
		t.Fatalf("EnqueueDomain(shop.wild.test) = %+v, want ACTIVE covered by *.wild.test", p)
	}
	if got := s.served("shop.wild.test"); !got.Equal(leaf) {
		t.Fatal("shop.wild.test is not served by the wildcard certificate")
	}

	// Renewal: the CA's window is in the past; the new order goes through the
	// delegation again, replacing the old certificate.
	before, _ := s.txtAnswers(d.DelegationLabel)
	past := time.Now().Add(-2 * time.Hour)
	s.env.SetRenewalInfo(t, leaf, past, past.Add(time.Hour))
	windowSet := time.Now()
	renewed := s.waitFor(d.Hostname, 60*time.Second, "renewed", func(d domains.Domain) bool {
		return d.Status == domains.StatusActive && d.Certificate.Serial != leaf.SerialNumber.Text(16)
	})
	t.Logf("ARI window moved into the past to renewed: %v (the notary asks ARI every second here)", time.Since(windowSet).Round(time.Millisecond))
	if after, _ := s.txtAnswers(d.DelegationLabel); after <= before {
		t.Fatalf("TXT questions answered at the label: %d before the renewal, %d after; want the renewal's", before, after)
	}
	certID, _ := api.MakeARICertID(leaf)
	if rep := s.proxy.Replaces(); len(rep) != 2 || rep[1] != certID {
		t.Fatalf("orders' replaces %q, want the second to name %s", rep, certID)
	}
	if got := s.served("b.wild.test"); got.SerialNumber.Text(16) != renewed.Certificate.Serial {
		t.Fatalf("certstore serves %s for b.wild.test, the record names %s", got.SerialNumber.Text(16), renewed.Certificate.Serial)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := gw.handshake(s, "b.wild.test")
		if err == nil && got.SerialNumber.Text(16) == renewed.Certificate.Serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still serves the old certificate for b.wild.test: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The customer removes the CNAME: re-verification counts it as leaving.
	s.env.ClearCNAME(t, "_acme-challenge.wild.test")
	moved := s.waitFor(d.Hostname, 30*time.Second, "MOVED", func(d domains.Domain) bool { return d.Status == domains.StatusMoved })
	if want := "moved: delegation: no CNAME at _acme-challenge.wild.test; publish _acme-challenge.wild.test CNAME " + target; moved.LastError != want {
		t.Fatalf("LastError %q, want %q", moved.LastError, want)
	}
}

// TestApexAndWildcardThroughDelegation: an APEX_AND_WILDCARD domain's certificate is
// stored under the apex and `*.<apex>`, so the apex and every one-label subdomain are
// served; a subdomain added later is covered by it; a later WILDCARD claim of the same
// base (two creations that raced past controlapi) is refused at pre-flight (they would
// share the CNAME and the certstore name) without an order, while the first claim still
// renews under both names, and its removal leaves the first claim's names alone;
// removing the apex domain removes both names.
func TestApexAndWildcardThroughDelegation(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{delegation: true})
	s.publishTXT("apexw.test")
	n := s.startNotary("notary", true, "-renewal-info-interval", "1s")
	d := s.createWildcard("apexw.test", domains.KindApexAndWildcard, "apexw.test")
	s.delegate(d)
	active := s.waitFor(d.Hostname, 60*time.Second, "ACTIVE", isActive)
	if got := certNames(active); !slices.Equal(got, []string{"*.apexw.test", "apexw.test"}) {
		t.Fatalf("certificate names %q, want *.apexw.test and apexw.test", got)
	}
	leaf := s.served("apexw.test")
	if got := s.served("c.apexw.test"); !got.Equal(leaf) {
		t.Fatal("c.apexw.test is not served by the apex-and-wildcard certificate")
	}
	s.notFound("x.y.apexw.test")

	s.createDomain("shop.apexw.test", "apexw.test")
	resp, err := n.api.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "shop.apexw.test"})
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.GetProgress(); p.GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_ACTIVE || p.GetCoveredBy() != "apexw.test" {
		t.Fatalf("EnqueueDomain(shop.apexw.test) = %+v, want ACTIVE covered by apexw.test", p)
	}

	rival := s.createWildcard("*.apexw.test", domains.KindWildcard, "apexw.test")
	refused := s.waitFor(rival.Hostname, 30*time.Second, "refused by pre-flight", func(d domains.Domain) bool { return d.Status == domains.StatusFailed })
	if want := "pre-flight: apexw.test (APEX_AND_WILDCARD) was claimed first and uses _acme-challenge.apexw.test and the certificate name *.apexw.test; this claim is not ordered while it exists"; refused.LastError != want {
		t.Fatalf("rival's LastError %q, want %q", refused.LastError, want)
	}
	if o := s.proxy.Orders(); o != 1 {
		t.Fatalf("%d orders, want only the apex domain's", o)
	}
	// The first claim still renews, under both names, while the refused one exists.
	past := time.Now().Add(-2 * time.Hour)
	s.env.SetRenewalInfo(t, leaf, past, past.Add(time.Hour))
	renewed := s.waitFor(d.Hostname, 60*time.Second, "renewed", func(d domains.Domain) bool {
		return d.Status == domains.StatusActive && d.Certificate.Serial != leaf.SerialNumber.Text(16)
	})
	for _, name := range []string{"apexw.test", "c.apexw.test"} {
		if got := s.served(name); got.SerialNumber.Text(16) != renewed.Certificate.Serial {
			t.Fatalf("%s served %s after the renewal, want %s", name, got.SerialNumber.Text(16), renewed.Certificate.Serial)
		}
	}
	leaf = s.served("apexw.test")
	s.remove(rival.Hostname)
	if got := s.served("c.apexw.test"); !got.Equal(leaf) {
		t.Fatal("removing the refused rival took *.apexw.test from the apex domain")
	}

	s.remove("shop.apexw.test")
	s.remove(d.Hostname)
	s.notFound("apexw.test")
	s.notFound("c.apexw.test")
	// The certificate itself is gone under both names, not only the routes.
	for _, name := range []string{"apexw.test", "*.apexw.test"} {
		_, err := certstorev1.NewCertWriteServiceClient(s.certstoreConn(t)).GetCertificate(t.Context(), &certstorev1.GetCertificateRequest{Hostname: name})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("GetCertificate(%s) after removal: %v, want NOT_FOUND", name, err)
		}
	}
}

// remove plays controlapi's delete: DELETING, due now; the notary finishes it.
func (s *stack) remove(host string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := s.store.GetDomain(s.t.Context(), host)
		if errors.Is(err, domains.ErrNotFound) {
			return
		}
		if err == nil && d.Status != domains.StatusDeleting {
			d.Status, d.NextAttemptAt = domains.StatusDeleting, time.Now()
			_, err = s.store.UpdateDomain(s.t.Context(), d) // a conflict is retried
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not removed within 20s: %v", host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
