package challenges_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/memchallenges"
)

// FuzzHandler feeds arbitrary paths and Host headers: the handler must never panic and
// must answer 200 only with the one stored entry, for its own host.
func FuzzHandler(f *testing.F) {
	store := memchallenges.New()
	if err := store.Put(f.Context(), challenges.Entry{Kind: challenges.KindACME, Name: "tok", Host: "shop.example.com", Content: "tok.key"}, time.Hour); err != nil {
		f.Fatal(err)
	}
	h := &challenges.Handler{Store: store, Log: zap.NewNop()}
	f.Add("/.well-known/acme-challenge/tok", "shop.example.com:8000")
	f.Add("/.well-known/acme-challenge/../tok", "shop.example.com")
	f.Add("/.well-known/pki-validation/a.txt", "[::1]:80")
	f.Add("/.well-known/acme-challenge/tok", "xn--bcher-kva.example")
	f.Fuzz(func(t *testing.T, path, host string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = path
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 200 && (path != "/.well-known/acme-challenge/tok" || rec.Body.String() != "tok.key") {
			t.Fatalf("answered 200 for path %q host %q: %q", path, host, rec.Body.String())
		}
	})
}
