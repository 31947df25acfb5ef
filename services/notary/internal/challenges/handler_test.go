package challenges_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/services/notary/internal/challenges"
	"github.com/portico-dev/portico/services/notary/internal/challenges/memchallenges"
)

type brokenStore struct{ challenges.Store }

func (brokenStore) Get(context.Context, challenges.Kind, string) (challenges.Entry, error) {
	return challenges.Entry{}, errors.New("connection refused")
}

func TestHandler(t *testing.T) {
	store := memchallenges.New()
	ctx := t.Context()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.Put(ctx, challenges.Entry{Kind: challenges.KindACME, Name: "Ab-_9z", Host: "shop.example.com", Content: "Ab-_9z.thumbprint"}, time.Minute))
	must(store.Put(ctx, challenges.Entry{Kind: challenges.KindPKIValidation, Name: "fileauth.txt", Host: "shop.example.com", Content: "pki-proof"}, time.Minute))
	must(store.Put(ctx, challenges.Entry{Kind: challenges.KindACME, Name: "testtok", Host: "app.bench.test", Content: "testtok.thumbprint"}, time.Minute))
	h := &challenges.Handler{Store: store, Policy: hostname.Policy{ExtraTLDs: []string{"test"}}, Log: zap.NewNop()}

	tests := []struct {
		name       string
		method     string
		host       string
		target     string
		store      challenges.Store
		wantStatus int
		wantBody   string
	}{
		{name: "token for its host", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 200, wantBody: "Ab-_9z.thumbprint"},
		{name: "host with the port the CA sends", method: "GET", host: "shop.example.com:8000", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 200, wantBody: "Ab-_9z.thumbprint"},
		{name: "host in upper case with a trailing dot", method: "GET", host: "SHOP.Example.com.", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 200, wantBody: "Ab-_9z.thumbprint"},
		{name: "HEAD answers without a body", method: "HEAD", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 200},
		{name: "extra TLD from the policy", method: "GET", host: "app.bench.test", target: "/.well-known/acme-challenge/testtok", wantStatus: 200, wantBody: "testtok.thumbprint"},
		{name: "POST is refused", method: "POST", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 405},
		{name: "another host's token", method: "GET", host: "other.example.com", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 404},
		{name: "an IP address as host", method: "GET", host: "127.0.0.1:8000", target: "/.well-known/acme-challenge/Ab-_9z", wantStatus: 404},
		{name: "unknown token", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/nope", wantStatus: 404},
		{name: "token with a character outside base64url", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z.x", wantStatus: 404},
		{name: "padding is not base64url", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z=", wantStatus: 404},
		{name: "a deeper path", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z/x", wantStatus: 404},
		{name: "empty token", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/", wantStatus: 404},
		{name: "a query string", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z?x=1", wantStatus: 404},
		{name: "path outside the two families", method: "GET", host: "shop.example.com", target: "/Ab-_9z", wantStatus: 404},
		{name: "pki-validation file for its host", method: "GET", host: "shop.example.com", target: "/.well-known/pki-validation/fileauth.txt", wantStatus: 200, wantBody: "pki-proof"},
		{name: "pki-validation hidden file name", method: "GET", host: "shop.example.com", target: "/.well-known/pki-validation/.htaccess", wantStatus: 404},
		{name: "pki-validation does not serve ACME tokens", method: "GET", host: "shop.example.com", target: "/.well-known/pki-validation/Ab-_9z", wantStatus: 404},
		{name: "store down is 503, never a wrong answer", method: "GET", host: "shop.example.com", target: "/.well-known/acme-challenge/Ab-_9z", store: brokenStore{}, wantStatus: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hh := *h
			if tc.store != nil {
				hh.Store = tc.store
			}
			req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.target, nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			hh.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantStatus == http.StatusOK && rec.Body.String() != tc.wantBody {
				t.Fatalf("body %q, want %q", rec.Body.String(), tc.wantBody)
			}
		})
	}
}

func TestProviderStoresForTheHandler(t *testing.T) {
	store := memchallenges.New()
	p := &challenges.Provider{Store: store, TTL: time.Minute}
	if err := p.Present(t.Context(), "Shop.Example.com", "tok1", "tok1.key"); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(t.Context(), challenges.KindACME, "tok1")
	if err != nil || got.Host != "shop.example.com" || got.Content != "tok1.key" {
		t.Fatalf("presented entry %+v, %v", got, err)
	}
	if err := p.CleanUp(t.Context(), "shop.example.com", "tok1", "tok1.key"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(t.Context(), challenges.KindACME, "tok1"); !errors.Is(err, challenges.ErrNotFound) {
		t.Fatalf("after CleanUp: %v", err)
	}
}
