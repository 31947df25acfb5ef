package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/acmetest"
	"github.com/portico-dev/portico/pkg/domains"
	"github.com/portico-dev/portico/pkg/errkind"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
	notaryv1 "github.com/portico-dev/portico/pkg/gen/portico/notary/v1"
)

// TestIssuance: with Pebble's default chaos on, a domain goes from PENDING_VERIFICATION
// to ACTIVE with a certificate that chains to Pebble's root and matches its key (read
// back through certstore); a domain without its TXT record stays pending and says why;
// a CAA record naming another CA stops the order before it is placed.
func TestIssuance(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{nonceReject: acmetest.DefaultChaos})
	n := s.startNotary("notary", true)

	s.createDomain("shop.alpha.test", "alpha.test")
	s.createDomain("shop.beta.test", "beta.test")
	s.createDomain("shop.gamma.test", "gamma.test")
	s.publishTXT("alpha.test")
	s.publishTXT("gamma.test")
	s.env.AddCAA(t, "gamma.test", acmetest.CAA{Tag: "issue", Value: "other-ca.test"})

	t.Run("verify-now proves ownership and the domain becomes ACTIVE", func(t *testing.T) {
		resp, err := n.api.VerifyDomain(t.Context(), &notaryv1.VerifyDomainRequest{Hostname: "Shop.Alpha.test"})
		if err != nil {
			t.Fatal(err)
		}
		if st := resp.GetProgress().GetStatus(); st == controlv1.DomainStatus_DOMAIN_STATUS_PENDING_VERIFICATION || st == controlv1.DomainStatus_DOMAIN_STATUS_FAILED {
			t.Fatalf("VerifyDomain answered %v (%s), want ownership proven", st, resp.GetProgress().GetLastError())
		}
		d := s.waitFor("shop.alpha.test", 60*time.Second, "ACTIVE", isActive)
		leaf := s.served("shop.alpha.test")
		if d.Certificate.Serial != leaf.SerialNumber.Text(16) || d.VerifiedAt.IsZero() || d.LastError != "" {
			t.Fatalf("record %+v does not describe the served certificate %s", d, leaf.SerialNumber.Text(16))
		}
		if d.Progress.RenewAt.IsZero() || !d.Progress.RenewAt.Before(leaf.NotAfter) || d.NextAttemptAt.IsZero() {
			t.Fatalf("no renewal scheduled: %+v", d.Progress)
		}
		if s.challengeKeys() != 0 {
			t.Fatalf("%d HTTP-01 answers left in Redis after the order", s.challengeKeys())
		}
	})

	t.Run("without the TXT record the domain stays pending and says why", func(t *testing.T) {
		d := s.waitFor("shop.beta.test", 20*time.Second, "checked twice", func(d domains.Domain) bool { return d.Progress.Failures >= 2 })
		if d.Status != domains.StatusPendingVerification || d.LastError != "no TXT record at _verify.beta.test" || !d.NextAttemptAt.After(d.Progress.LastCheckedAt) {
			t.Fatalf("record %+v, want PENDING_VERIFICATION with the reason and a next attempt", d)
		}
		resp, err := n.api.GetDomainProgress(t.Context(), &notaryv1.GetDomainProgressRequest{Hostname: "shop.beta.test"})
		if err != nil || resp.GetProgress().GetLastError() != d.LastError || resp.GetProgress().GetNextAttemptTime() == nil {
			t.Fatalf("GetDomainProgress = %+v, %v", resp, err)
		}
	})

	t.Run("a CAA record naming another CA stops the order before it is placed", func(t *testing.T) {
		d := s.waitFor("shop.gamma.test", 20*time.Second, "FAILED", func(d domains.Domain) bool { return d.Status == domains.StatusFailed })
		want := "pre-flight (CAA): CAA at gamma.test allows only other-ca.test, not pebble.test"
		if d.LastError != want || d.VerifiedAt.IsZero() || d.NextAttemptAt.IsZero() {
			t.Fatalf("record %+v, want FAILED with %q and a retry", d, want)
		}
	})

	if got := s.proxy.Orders(); got != 1 {
		t.Fatalf("the CA saw %d orders, want 1 (only shop.alpha.test)", got)
	}
}

// TestThreeReplicasTwentyDomains: three notary processes given the same 20 domains place
// exactly 20 orders, counted at the CA side, with Pebble's default chaos on.
func TestThreeReplicasTwentyDomains(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{nonceReject: acmetest.DefaultChaos})
	s.startNotary("notary-1", false)
	s.startNotary("notary-2", false)
	s.startNotary("notary-3", true) // Pebble validates here, whichever replica ordered
	const n = 20
	hosts := make([]string, n)
	for i := range n {
		registered := fmt.Sprintf("r%02d.test", i)
		hosts[i] = "www." + registered
		s.publishTXT(registered)
	}
	for i, h := range hosts {
		s.createDomain(h, fmt.Sprintf("r%02d.test", i))
	}
	for _, h := range hosts {
		s.waitFor(h, 150*time.Second, "ACTIVE", isActive)
	}
	for _, h := range hosts {
		s.served(h)
	}
	if got := s.proxy.Orders(); got != n {
		t.Fatalf("the CA saw %d orders for %d domains, want exactly %d", got, n, n)
	}
}

// TestKilledMidIssuance: a notary killed with SIGKILL while a domain is ISSUING is
// finished by another replica, with one consistent certificate and key.
func TestKilledMidIssuance(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.publishTXT("delta.test")
	// Pebble's validation request is accepted and never answered, so the first notary is
	// caught with its order placed and its challenge presented, waiting on the CA.
	hold := holdConnections(t, s.challengeAddr)
	first := s.startNotary("notary-killed", false)
	s.createDomain("shop.delta.test", "delta.test")
	d := s.waitFor("shop.delta.test", 20*time.Second, "ISSUING with its challenge presented", func(d domains.Domain) bool {
		return d.Status == domains.StatusIssuing && s.challengeKeys() > 0
	})
	first.Kill()
	hold()
	issuingVersion := d.Version

	s.startNotary("notary-survivor", true)
	d = s.waitFor("shop.delta.test", 60*time.Second, "ACTIVE", isActive)
	leaf := s.served("shop.delta.test")
	if d.Certificate.Serial != leaf.SerialNumber.Text(16) {
		t.Fatalf("the record names serial %s, certstore serves %s", d.Certificate.Serial, leaf.SerialNumber.Text(16))
	}
	if d.Version <= issuingVersion+1 {
		t.Fatalf("version %d: the survivor did not persist its own ISSUING before ordering", d.Version)
	}
	if got := s.proxy.Orders(); got != 2 {
		t.Fatalf("%d orders, want 2: the killed notary's and the survivor's", got)
	}
}

// TestRenewalThroughARI: when the CA's renewal window (ARI) moves into the past, the
// certificate is renewed with `replaces` naming it, and the old certificate is served
// until the new one is stored.
func TestRenewalThroughARI(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.publishTXT("epsilon.test")
	s.startNotary("notary", true, "-renewal-info-interval", "1s")
	s.createDomain("shop.epsilon.test", "epsilon.test")
	s.waitFor("shop.epsilon.test", 60*time.Second, "ACTIVE", isActive)
	old := s.served("shop.epsilon.test")

	var gaps int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := s.reads.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "shop.epsilon.test"}); err != nil {
				gaps++
			}
		}
	})
	past := time.Now().Add(-2 * time.Hour)
	s.env.SetRenewalInfo(t, old, past, past.Add(time.Hour))
	d := s.waitFor("shop.epsilon.test", 60*time.Second, "renewed", func(d domains.Domain) bool {
		return d.Status == domains.StatusActive && d.Certificate.Serial != old.SerialNumber.Text(16)
	})
	close(stop)
	wg.Wait()
	renewed := s.served("shop.epsilon.test")
	if renewed.SerialNumber.Text(16) != d.Certificate.Serial {
		t.Fatalf("record names %s, certstore serves %s", d.Certificate.Serial, renewed.SerialNumber.Text(16))
	}
	certID, _ := api.MakeARICertID(old)
	if rep := s.proxy.Replaces(); len(rep) != 2 || rep[1] != certID {
		t.Fatalf("orders' replaces %q, want the second to name %s", rep, certID)
	}
	if gaps > 0 {
		t.Fatalf("certstore served nothing %d times during the renewal", gaps)
	}
}

// TestRateLimitHonoursRetryAfter: a 429 with Retry-After from the CA (our fake in front
// of Pebble) puts the next attempt at the time the CA gave, shows it on the domain, and
// the order then succeeds.
func TestRateLimitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.publishTXT("zeta.test")
	s.proxy.RateLimitNext("4")
	s.startNotary("notary", true)
	created := time.Now()
	s.createDomain("shop.zeta.test", "zeta.test")
	d := s.waitFor("shop.zeta.test", 20*time.Second, "rate limited", func(d domains.Domain) bool { return d.LastError != "" && s.proxy.RateLimited() == 1 })
	if d.Status != domains.StatusVerified || !strings.Contains(d.LastError, "rate limit") {
		t.Fatalf("record %+v, want VERIFIED with the rate-limit reason", d)
	}
	if wait := d.NextAttemptAt.Sub(d.UpdatedAt); wait < 4*time.Second || wait > 5*time.Second {
		t.Fatalf("next attempt %v after the refusal, want the 4 s the CA gave", wait)
	}
	d = s.waitFor("shop.zeta.test", 30*time.Second, "ACTIVE", isActive)
	if active := d.UpdatedAt.Sub(created); active < 4*time.Second {
		t.Fatalf("ACTIVE after %v: the Retry-After was not honoured", active)
	}
	if s.proxy.Orders() != 1 || s.proxy.RateLimited() != 1 {
		t.Fatalf("%d orders and %d refusals, want 1 and 1", s.proxy.Orders(), s.proxy.RateLimited())
	}
	s.served("shop.zeta.test")
}

// TestWildcardOfTheSameTenantCovers: EnqueueDomain makes a new subdomain ACTIVE at once
// when a wildcard domain of the same tenant is active, with its route written; another
// tenant's wildcard does not count.
func TestWildcardOfTheSameTenantCovers(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	n := s.startNotary("notary", true)
	now := time.Now()
	for _, tenant := range []string{"acme", "other"} {
		registered := tenant + "-eta.test"
		if _, err := s.store.CreateDomain(t.Context(), domains.Domain{
			Hostname: "*." + registered, TenantID: tenant, Kind: domains.KindWildcard, RegisteredDomain: registered,
			Status: domains.StatusActive, VerificationToken: tenantToken(registered), VerifiedAt: now, CreatedAt: now,
			Progress: domains.Progress{ReverifyAt: now.Add(24 * time.Hour)}, NextAttemptAt: now.Add(24 * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	s.createDomain("app.acme-eta.test", "acme-eta.test")
	s.createDomain("app.other-eta.test", "other-eta.test")
	resp, err := n.api.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "app.acme-eta.test"})
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.GetProgress(); p.GetStatus() != controlv1.DomainStatus_DOMAIN_STATUS_ACTIVE || p.GetCoveredBy() != "*.acme-eta.test" {
		t.Fatalf("EnqueueDomain answered %+v, want ACTIVE covered by *.acme-eta.test", p)
	}
	route, err := s.reads.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "app.acme-eta.test"})
	if err == nil {
		t.Fatalf("Lookup found a certificate %+v; none was stored in this test", route)
	}
	d, _ := s.store.GetDomain(t.Context(), "app.acme-eta.test")
	if d.Status != domains.StatusActive || d.NextAttemptAt.Before(now.Add(time.Hour)) {
		t.Fatalf("record %+v, want ACTIVE with the route written and the next work a day away", d)
	}
	resp, err = n.api.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "app.other-eta.test"})
	if err != nil || resp.GetProgress().GetStatus() == controlv1.DomainStatus_DOMAIN_STATUS_ACTIVE {
		t.Fatalf("another tenant's wildcard covered the domain: %+v, %v", resp, err)
	}
}

// holdConnections listens on addr, accepts connections and never answers; the returned
// function closes everything so the address can be reused.
func holdConnections(t *testing.T, addr string) func() {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			lis.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(closeAll)
	return closeAll
}

// TestAdoptsWhatADeadHolderStored: a holder that stored the certificate and died before
// recording it leaves an ISSUING record; the next holder adopts the stored certificate
// instead of ordering another.
func TestAdoptsWhatADeadHolderStored(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	d := s.createDomain("shop.theta.test", "theta.test")
	now := time.Now()
	d.Status, d.VerifiedAt = domains.StatusIssuing, now
	d.Progress.OrderStartedAt, d.NextAttemptAt = now, now
	d, err := s.store.UpdateDomain(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	chain, key, serial := selfIssued(t, "shop.theta.test")
	writes := certstorev1.NewCertWriteServiceClient(s.certstoreConn(t))
	if _, err := writes.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{
		Hostname: "shop.theta.test", CertificateChain: chain, PrivateKey: key, FencingToken: d.FencingToken(),
	}); err != nil {
		t.Fatal(err)
	}
	s.startNotary("notary", true)
	d = s.waitFor("shop.theta.test", 20*time.Second, "ACTIVE", isActive)
	if d.Certificate.Serial != serial {
		t.Fatalf("record names serial %s, want the stored %s", d.Certificate.Serial, serial)
	}
	if s.proxy.Orders() != 0 {
		t.Fatalf("%d orders: the stored certificate was not adopted", s.proxy.Orders())
	}
	if resp, err := s.reads.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "shop.theta.test"}); err != nil || resp.GetRoute().GetTenantId() != "acme" {
		t.Fatalf("route after adoption: %+v, %v", resp.GetRoute(), err)
	}
}

// TestDeletingIsFinished: a domain controlapi marked DELETING loses its route and
// certificate in certstore, then its record; bad hostnames are refused naming the field.
func TestDeletingIsFinished(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.publishTXT("iota.test")
	n := s.startNotary("notary", true)
	s.createDomain("shop.iota.test", "iota.test")
	d := s.waitFor("shop.iota.test", 60*time.Second, "ACTIVE", isActive)
	s.served("shop.iota.test")
	d.Status, d.NextAttemptAt = domains.StatusDeleting, time.Now()
	if _, err := s.store.UpdateDomain(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.store.GetDomain(t.Context(), "shop.iota.test")
		if errors.Is(err, domains.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record still there: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.reads.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "shop.iota.test"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Lookup after removal: %v, want NOT_FOUND", err)
	}
	_, err := n.api.EnqueueDomain(t.Context(), &notaryv1.EnqueueDomainRequest{Hostname: "https://shop.iota.test/"})
	if fe := errkind.FromGRPC(err); !errkind.Is(fe, errkind.InvalidArgument) || len(fe.(*errkind.Error).Violations) != 1 || fe.(*errkind.Error).Violations[0].Field != "hostname" {
		t.Fatalf("EnqueueDomain with a URL: %v, want INVALID_ARGUMENT naming hostname", err)
	}
	_, err = n.api.GetDomainProgress(t.Context(), &notaryv1.GetDomainProgressRequest{Hostname: "shop.iota.test"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("progress of a removed domain: %v, want NOT_FOUND", err)
	}
}
