package server_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/secrets"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/awssm"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/awssm/smfake"
	"github.com/portico-dev/portico/services/certstore/internal/testcert"
)

func awsBackend(t *testing.T, fake *smfake.Server) secrets.Backend {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b, err := awssm.New(t.Context(), awssm.Options{Prefix: "portico/test/", Endpoint: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConcurrentWritersNeverMismatch: 50 writers store two certificates (with different
// keys) for one name in alternation, through two replicas, while readers Lookup through
// both replicas and check that every answer's key matches its leaf. With the AWS backend
// every replaced key's secret is deleted after the switch, so readers also race with
// deletions.
func TestConcurrentWritersNeverMismatch(t *testing.T) {
	const (
		name    = "race.example.com"
		writers = 50
		puts    = 10
		readers = 4
	)
	backends := []struct {
		name string
		make func(t *testing.T) (secrets.Backend, *smfake.Server)
	}{
		{"local", func(t *testing.T) (secrets.Backend, *smfake.Server) { return nil, nil }},
		{"aws", func(t *testing.T) (secrets.Backend, *smfake.Server) {
			fake := smfake.Start(t)
			return awsBackend(t, fake), fake
		}},
	}
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			c := newCluster(t)
			backend, fake := bc.make(t)
			replicas := []*replica{c.start(backend), c.start(backend)}
			ca := testcert.NewCA(t)
			versions := []testcert.Issued{
				ca.Issue(t, testcert.Leaf{DNSNames: []string{name}}),
				ca.Issue(t, testcert.Leaf{DNSNames: []string{name}}),
			}
			setRoute(t, replicas[0], name, "t")
			put(t, replicas[0], name, versions[0], 1)

			var (
				stop                         atomic.Bool
				lookups, retried, mismatches atomic.Int64
				readersWG, writersWG         sync.WaitGroup
			)
			for i := range readers {
				readersWG.Add(1)
				go func() {
					defer readersWG.Done()
					r := replicas[i%2]
					for !stop.Load() {
						resp, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: name})
						if status.Code(err) == codes.Unavailable {
							retried.Add(1) // the key changed under three reads in a row: retry, never a mismatch
							continue
						}
						if err != nil {
							t.Errorf("Lookup: %v", err)
							return
						}
						lookups.Add(1)
						if err := keyMatchesLeaf(resp.GetCertificateChain(), resp.GetPrivateKey()); err != nil {
							mismatches.Add(1)
							t.Errorf("version %d: %v", resp.GetVersion(), err)
						}
					}
				}()
			}
			for w := range writers {
				writersWG.Add(1)
				go func() {
					defer writersWG.Done()
					r := replicas[w%2]
					for i := range puts {
						v := versions[(w+i)%2]
						if _, err := r.write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{
							Hostname: name, CertificateChain: v.Chain, PrivateKey: v.Key, FencingToken: 1,
						}); err != nil {
							t.Errorf("writer %d put %d: %v", w, i, err)
							return
						}
					}
				}()
			}
			writersWG.Wait()
			stop.Store(true)
			readersWG.Wait()
			t.Logf("%d lookups checked during %d puts, %d retried, %d mismatched", lookups.Load(), writers*puts, retried.Load(), mismatches.Load())
			if lookups.Load() < 20 {
				t.Fatalf("only %d lookups ran during the writes; the test proved little", lookups.Load())
			}
			if retried.Load() > lookups.Load() {
				t.Errorf("%d lookups gave up retrying against %d answered: readers starve", retried.Load(), lookups.Load())
			}
			got, err := replicas[1].write.GetCertificate(t.Context(), &certstorev1.GetCertificateRequest{Hostname: name})
			if err != nil || got.GetVersion() != writers*puts+1 {
				t.Fatalf("final version %d (%v), want %d: one per put", got.GetVersion(), err, writers*puts+1)
			}
			if fake != nil {
				var held []string
				for _, n := range fake.Names() {
					if strings.Contains(n, name) {
						held = append(held, n)
					}
				}
				if len(held) != 1 {
					t.Fatalf("%d secrets left for %s, want 1: every replaced key must be deleted", len(held), name)
				}
			}
		})
	}
}

// TestColdFleetReadsEachKeyOnce: many gateways asking for the same name at once cause
// one secrets-backend read, and later Lookups none, until the certificate changes.
func TestColdFleetReadsEachKeyOnce(t *testing.T) {
	fake := smfake.Start(t)
	c := newCluster(t)
	r := c.start(awsBackend(t, fake))
	ca := testcert.NewCA(t)
	name := "busy.example.com"
	put(t, r, name, ca.Issue(t, testcert.Leaf{DNSNames: []string{name}}), 1)
	setRoute(t, r, name, "t")
	before := fake.Calls("GetSecretValue")
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: name}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := fake.Calls("GetSecretValue") - before; n != 1 {
		t.Fatalf("100 concurrent cold lookups made %d secret reads, want 1", n)
	}
	put(t, r, name, ca.Issue(t, testcert.Leaf{DNSNames: []string{name}}), 1)
	for range 10 {
		if _, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: name}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.Calls("GetSecretValue") - before; n != 2 {
		t.Fatalf("after a renewal, %d secret reads in all, want 2 (one per key)", n)
	}
}

// TestKeysNeverLogged runs puts, lookups (cold and warm), a refused put and a delete
// with every log line captured at debug level, and searches them for the key.
func TestKeysNeverLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	c := newCluster(t)
	c.log = zap.New(core)
	r := c.start(nil)
	ca := testcert.NewCA(t)
	name := "secret.example.com"
	issued := ca.Issue(t, testcert.Leaf{DNSNames: []string{name}})
	put(t, r, name, issued, 5)
	setRoute(t, r, name, "t")
	for range 2 {
		if _, err := r.read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: name}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{Hostname: name, CertificateChain: issued.Chain, PrivateKey: issued.Key, FencingToken: 1})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale put: %v", err)
	}
	if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(issued.Key)) {
		t.Fatal("the error carries the key")
	}
	if _, err := r.write.DeleteCertificate(t.Context(), &certstorev1.DeleteCertificateRequest{Hostname: name, FencingToken: 5}); err != nil {
		t.Fatal(err)
	}

	forms := map[string]string{
		"DER":    string(issued.Key),
		"base64": base64.StdEncoding.EncodeToString(issued.Key),
		"hex":    hex.EncodeToString(issued.Key),
		"PEM":    "PRIVATE KEY",
	}
	var audits int
	for _, e := range logs.All() {
		line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		for form, s := range forms {
			if strings.Contains(line, s) {
				t.Errorf("log line carries the key (%s): %s", form, e.Message)
			}
		}
		if e.Message == "private key read" {
			audits++
		}
	}
	if audits != 1 {
		t.Errorf("%d 'private key read' audit entries for one cold and one warm lookup, want 1", audits)
	}
	if logs.FilterMessage("certificate stored").Len() != 1 || logs.FilterMessage("certificate deleted").Len() != 1 {
		t.Error("want one audit entry for the store and one for the delete")
	}
	t.Logf("searched %d log entries", logs.Len())
}
