// Package storetest is the contract suite of store.Store: one set of tests that every
// implementation runs (memstore, redisstore, dynamostore), so they behave the same.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/certstore/internal/store"
)

// Factory returns an empty store for one test.
type Factory func(t *testing.T) store.Store

// Run runs the whole contract against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CertificateNotFound", testCertificateNotFound},
		{"PutGetRoundTrip", testPutGetRoundTrip},
		{"VersionsGrowAndReplacedKeyReturned", testVersions},
		{"Fencing", testFencing},
		{"FencingBeyondFloatPrecision", testFencingBeyondFloatPrecision},
		{"DeleteKeepsTombstone", testDelete},
		{"SwapKeyRef", testSwapKeyRef},
		{"Routes", testRoutes},
		{"GetServingReadsBothRecords", testGetServing},
		{"ListDueExactlyTheDueNames", testListDueExact},
		{"ListDuePagesWithTies", testListDuePages},
		{"ListDueRejectsBadInput", testListDueBadInput},
		{"ConcurrentPutsNeverMixRecords", testConcurrentPuts},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// base is a fixed instant on a millisecond, so round trips compare exactly.
var base = time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

// cert builds a record whose key reference is derived from its chain, so a mismatch
// between the two is visible.
func cert(name, tag string, fence int64, renew time.Time) store.Certificate {
	return store.Certificate{
		Name:         name,
		Chain:        [][]byte{der("leaf-" + tag), der("ca")},
		KeyRef:       []byte("key-" + tag),
		NotAfter:     renew.Add(30 * 24 * time.Hour),
		RenewTime:    renew,
		FencingToken: fence,
	}
}

// der makes a small valid DER value (an OCTET STRING), as a chain element must be.
func der(s string) []byte {
	return append([]byte{0x04, byte(len(s))}, s...)
}

func mustPut(t *testing.T, s store.Store, c store.Certificate) store.Certificate {
	t.Helper()
	got, _, err := s.PutCertificate(t.Context(), c)
	if err != nil {
		t.Fatalf("PutCertificate(%s): %v", c.Name, err)
	}
	return got
}

func testCertificateNotFound(t *testing.T, s store.Store) {
	if _, err := s.GetCertificate(t.Context(), "missing.example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCertificate of a missing name: err = %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteCertificate(t.Context(), "missing.example.com", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteCertificate of a missing name: err = %v, want ErrNotFound", err)
	}
}

func testPutGetRoundTrip(t *testing.T, s store.Store) {
	for _, name := range []string{"shop.example.com", "*.example.com", "xn--bcher-kva.example"} {
		t.Run(name, func(t *testing.T) {
			in := cert(name, "a", 7, base)
			in.NotAfter = in.NotAfter.Add(123456 * time.Nanosecond) // truncated to the millisecond
			stored, replaced, err := s.PutCertificate(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if replaced != nil {
				t.Errorf("first put replaced %q, want nil", replaced)
			}
			if stored.Version != 1 {
				t.Errorf("first version = %d, want 1", stored.Version)
			}
			got, err := s.GetCertificate(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			want := in
			want.Version = 1
			want.NotAfter = in.NotAfter.Truncate(time.Millisecond)
			if !equalCert(got, want) {
				t.Errorf("GetCertificate = %+v, want %+v", got, want)
			}
			got.Chain[0][0] = 0xff
			again, _ := s.GetCertificate(t.Context(), name)
			if again.Chain[0][0] == 0xff {
				t.Error("modifying a returned chain changed the stored one")
			}
		})
	}
}

func equalCert(a, b store.Certificate) bool {
	return a.Name == b.Name && slices.EqualFunc(a.Chain, b.Chain, func(x, y []byte) bool { return string(x) == string(y) }) &&
		string(a.KeyRef) == string(b.KeyRef) && a.NotAfter.Equal(b.NotAfter) && a.RenewTime.Equal(b.RenewTime) &&
		a.Version == b.Version && a.FencingToken == b.FencingToken
}

func testVersions(t *testing.T, s store.Store) {
	name := "v.example.com"
	for i := 1; i <= 3; i++ {
		stored, replaced, err := s.PutCertificate(t.Context(), cert(name, fmt.Sprint(i), 1, base))
		if err != nil {
			t.Fatal(err)
		}
		if stored.Version != int64(i) {
			t.Errorf("put %d: version %d, want %d", i, stored.Version, i)
		}
		wantReplaced := ""
		if i > 1 {
			wantReplaced = fmt.Sprintf("key-%d", i-1)
		}
		if string(replaced) != wantReplaced {
			t.Errorf("put %d: replaced %q, want %q", i, replaced, wantReplaced)
		}
	}
}

func testFencing(t *testing.T, s store.Store) {
	name := "fence.example.com"
	mustPut(t, s, cert(name, "a", 5, base))
	tests := []struct {
		name    string
		token   int64
		tag     string
		wantErr error
		wantTag string
	}{
		{"lower token refused", 4, "stale", store.ErrStaleFencing, "a"},
		{"equal token accepted", 5, "b", nil, "b"},
		{"higher token accepted", 9, "c", nil, "c"},
		{"the old token is now stale", 5, "stale", store.ErrStaleFencing, "c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.PutCertificate(t.Context(), cert(name, tc.tag, tc.token, base))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got, err := s.GetCertificate(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.KeyRef) != "key-"+tc.wantTag {
				t.Fatalf("stored key ref %q, want key-%s", got.KeyRef, tc.wantTag)
			}
		})
	}
}

// testFencingBeyondFloatPrecision uses tokens the size the notary sends (a creation time
// in milliseconds shifted left by 20, plus the version: about 2^60), where neighbouring
// tokens are the same float64. A store comparing them as doubles lets a stale writer in.
func testFencingBeyondFloatPrecision(t *testing.T, s store.Store) {
	name := "big.example.com"
	const high = int64(1793102400000) << 20 // 2026-10-26 in ms, shifted as the notary does
	mustPut(t, s, cert(name, "a", high+7, base))
	if _, _, err := s.PutCertificate(t.Context(), cert(name, "stale", high+6, base)); !errors.Is(err, store.ErrStaleFencing) {
		t.Fatalf("put with token high+6 over high+7: err = %v, want ErrStaleFencing", err)
	}
	if _, err := s.DeleteCertificate(t.Context(), name, high+6); !errors.Is(err, store.ErrStaleFencing) {
		t.Fatalf("delete with token high+6 over high+7: err = %v, want ErrStaleFencing", err)
	}
	mustPut(t, s, cert(name, "b", high+8, base))
	if _, err := s.DeleteCertificate(t.Context(), name, high+9); err != nil {
		t.Fatalf("delete with a newer token: %v", err)
	}
	if _, _, err := s.PutCertificate(t.Context(), cert(name, "late", high+8, base)); !errors.Is(err, store.ErrStaleFencing) {
		t.Fatalf("put with token high+8 after a delete at high+9: err = %v, want ErrStaleFencing", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	name := "gone.example.com"
	mustPut(t, s, cert(name, "a", 3, base))
	mustPut(t, s, cert(name, "b", 4, base))
	if _, err := s.DeleteCertificate(t.Context(), name, 3); !errors.Is(err, store.ErrStaleFencing) {
		t.Fatalf("delete with a stale token: err = %v, want ErrStaleFencing", err)
	}
	ref, err := s.DeleteCertificate(t.Context(), name, 6)
	if err != nil {
		t.Fatal(err)
	}
	if string(ref) != "key-b" {
		t.Errorf("DeleteCertificate returned key ref %q, want key-b", ref)
	}
	if _, err := s.GetCertificate(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteCertificate(t.Context(), name, 6); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: err = %v, want ErrNotFound", err)
	}
	if _, _, err := s.PutCertificate(t.Context(), cert(name, "late", 5, base)); !errors.Is(err, store.ErrStaleFencing) {
		t.Fatalf("put with a token below the deleter's: err = %v, want ErrStaleFencing", err)
	}
	stored := mustPut(t, s, cert(name, "c", 6, base))
	if stored.Version != 3 {
		t.Errorf("version after delete and put = %d, want 3 (versions survive a delete)", stored.Version)
	}
	due, _, err := s.ListDue(t.Context(), base.Add(time.Hour), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Version != 3 {
		t.Errorf("ListDue after delete and put = %+v, want the one new version", due)
	}
}

func testSwapKeyRef(t *testing.T, s store.Store) {
	name := "swap.example.com"
	mustPut(t, s, cert(name, "a", 1, base))
	tests := []struct {
		name     string
		version  int64
		old, new string
		wantErr  error
		wantRef  string
	}{
		{"wrong version", 2, "key-a", "key-x", store.ErrConflict, "key-a"},
		{"wrong old ref", 1, "key-z", "key-x", store.ErrConflict, "key-a"},
		{"matching", 1, "key-a", "key-rewrapped", nil, "key-rewrapped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SwapKeyRef(t.Context(), name, tc.version, []byte(tc.old), []byte(tc.new))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got, _ := s.GetCertificate(t.Context(), name)
			if string(got.KeyRef) != tc.wantRef || got.Version != 1 {
				t.Fatalf("key ref %q version %d, want %q version 1", got.KeyRef, got.Version, tc.wantRef)
			}
		})
	}
	if err := s.SwapKeyRef(t.Context(), "none.example.com", 1, []byte("a"), []byte("b")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("swap on a missing record: err = %v, want ErrNotFound", err)
	}
}

func testRoutes(t *testing.T, s store.Store) {
	name := "r.example.com"
	if _, err := s.GetRoute(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing route: err = %v, want ErrNotFound", err)
	}
	steps := []store.Route{
		{Hostname: name, TenantID: "t1", Upstream: "10.0.0.1:8080", RedirectHTTPS: true},
		{Hostname: name, TenantID: "t2"}, // replacing clears the fields not given
	}
	for _, r := range steps {
		if err := s.SetRoute(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRoute(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got != r {
			t.Fatalf("GetRoute = %+v, want %+v", got, r)
		}
	}
	if err := s.DeleteRoute(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRoute(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted route: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteRoute(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteRoute: err = %v, want ErrNotFound", err)
	}
}

func listAll(t *testing.T, s store.Store, before time.Time, pageSize int) []store.Due {
	t.Helper()
	var all []store.Due
	token := ""
	for range 1000 {
		page, next, err := s.ListDue(t.Context(), before, pageSize, token)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > pageSize {
			t.Fatalf("page of %d, want at most %d", len(page), pageSize)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		token = next
	}
	t.Fatal("ListDue never ended")
	return nil
}

func names(due []store.Due) []string {
	out := make([]string, len(due))
	for i, d := range due {
		out[i] = d.Name
	}
	return out
}

func testListDueExact(t *testing.T, s store.Store) {
	// a..e due at base+1h..+5h; renewing c moves it past the bound; deleting d drops it.
	for i, n := range []string{"a", "b", "c", "d", "e"} {
		mustPut(t, s, cert(n+".example.com", n, 1, base.Add(time.Duration(i+1)*time.Hour)))
	}
	mustPut(t, s, cert("c.example.com", "c2", 1, base.Add(100*time.Hour)))
	if _, err := s.DeleteCertificate(t.Context(), "d.example.com", 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		before time.Time
		want   []string
	}{
		{"nothing due", base, nil},
		{"bound is exclusive", base.Add(time.Hour), nil},
		{"first two", base.Add(2*time.Hour + time.Millisecond), []string{"a.example.com", "b.example.com"}},
		{"renewed and deleted left out", base.Add(6 * time.Hour), []string{"a.example.com", "b.example.com", "e.example.com"}},
		{"renewed one when due again", base.Add(101 * time.Hour), []string{"a.example.com", "b.example.com", "e.example.com", "c.example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			due := listAll(t, s, tc.before, 2)
			if !slices.Equal(names(due), tc.want) {
				t.Fatalf("ListDue(before %v) = %v, want %v", tc.before.Sub(base), names(due), tc.want)
			}
			for _, d := range due {
				if !d.RenewTime.Before(tc.before) || d.Version < 1 || d.NotAfter.IsZero() {
					t.Errorf("entry %+v: want renew before the bound, a version and notAfter", d)
				}
			}
		})
	}
}

func testListDuePages(t *testing.T, s store.Store) {
	var want []string
	for i := range 23 {
		// Groups of equal renew times, so pages end in the middle of ties.
		name := fmt.Sprintf("n%02d.example.com", i)
		mustPut(t, s, cert(name, name, 1, base.Add(time.Duration(i/5)*time.Minute)))
		want = append(want, name)
	}
	for _, size := range []int{1, 2, 5, 7, 23, 1000} {
		t.Run(fmt.Sprint("page size ", size), func(t *testing.T) {
			if got := names(listAll(t, s, base.Add(time.Hour), size)); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("entry under the cursor deleted between pages", func(t *testing.T) {
		page, next, err := s.ListDue(t.Context(), base.Add(time.Hour), 3, "")
		if err != nil || next == "" {
			t.Fatalf("first page: %v, next %q", err, next)
		}
		if _, err := s.DeleteCertificate(t.Context(), page[2].Name, 1); err != nil {
			t.Fatal(err)
		}
		rest := listAllFrom(t, s, base.Add(time.Hour), 3, next)
		if got := append(names(page), names(rest)...); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func listAllFrom(t *testing.T, s store.Store, before time.Time, size int, token string) []store.Due {
	t.Helper()
	var all []store.Due
	for token != "" {
		page, next, err := s.ListDue(t.Context(), before, size, token)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		token = next
	}
	return all
}

func testListDueBadInput(t *testing.T, s store.Store) {
	tests := []struct {
		name  string
		size  int
		token string
	}{
		{"page size zero", 0, ""},
		{"page size too large", store.MaxPageSize + 1, ""},
		{"token not base64", 10, "%%%"},
		{"token from elsewhere", 10, "bm90IGEgdG9rZW4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.ListDue(t.Context(), base, tc.size, tc.token); err == nil {
				t.Fatal("err = nil, want a refusal")
			}
		})
	}
}

func testConcurrentPuts(t *testing.T, s store.Store) {
	const writers, puts = 8, 20
	name := "race.example.com"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			c, err := s.GetCertificate(ctx, name)
			if errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
				continue
			}
			if err != nil {
				readErr <- err
				return
			}
			if want := "key-" + string(c.Chain[0][len("\x04\x00leaf-"):]); string(c.KeyRef) != want {
				readErr <- fmt.Errorf("version %d pairs chain %q with key ref %q", c.Version, c.Chain[0], c.KeyRef)
				return
			}
		}
	}()
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range puts {
				if _, _, err := s.PutCertificate(t.Context(), cert(name, fmt.Sprintf("w%d-%d", w, i), 1, base)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	writersWG.Wait()
	cancel()
	wg.Wait()
	select {
	case err := <-readErr:
		t.Fatal(err)
	default:
	}
	got, err := s.GetCertificate(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != writers*puts {
		t.Fatalf("final version %d, want %d (one per put)", got.Version, writers*puts)
	}
}

func testCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"GetCertificate": func() error { _, err := s.GetCertificate(ctx, "a.example.com"); return err },
		"PutCertificate": func() error {
			_, _, err := s.PutCertificate(ctx, cert("a.example.com", "a", 1, base))
			return err
		},
		"SetRoute": func() error { return s.SetRoute(ctx, store.Route{Hostname: "a.example.com"}) },
		"ListDue": func() error {
			_, _, err := s.ListDue(ctx, base, 10, "")
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want one wrapping context.Canceled", err)
			}
		})
	}
}

func testGetServing(t *testing.T, s store.Store) {
	mustPut(t, s, cert("both.example.com", "b", 1, base))
	mustPut(t, s, cert("cert-only.example.com", "c", 1, base))
	for _, name := range []string{"both.example.com", "route-only.example.com"} {
		if err := s.SetRoute(t.Context(), store.Route{Hostname: name, TenantID: "t-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name                string
		wantCert, wantRoute bool
	}{
		{"both.example.com", true, true},
		{"cert-only.example.com", true, false},
		{"route-only.example.com", false, true},
		{"none.example.com", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetServing(t.Context(), tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Certificate != nil) != tc.wantCert || (got.Route != nil) != tc.wantRoute {
				t.Fatalf("certificate %v route %v, want %v %v", got.Certificate != nil, got.Route != nil, tc.wantCert, tc.wantRoute)
			}
			if tc.wantCert {
				want, _ := s.GetCertificate(t.Context(), tc.name)
				if !equalCert(*got.Certificate, want) {
					t.Errorf("certificate %+v, want %+v as GetCertificate reads it", *got.Certificate, want)
				}
			}
			if tc.wantRoute && *got.Route != (store.Route{Hostname: tc.name, TenantID: "t-" + tc.name}) {
				t.Errorf("route %+v", *got.Route)
			}
		})
	}
}
