package challenges

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/hostname"
	"github.com/portico-dev/portico/pkg/logging"
)

// Handler serves the entries of a Store (see the package documentation).
type Handler struct {
	Store  Store
	Policy hostname.Policy
	Log    *zap.Logger
}

const (
	acmePrefix = "/.well-known/acme-challenge/"
	pkiPrefix  = "/.well-known/pki-validation/"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, name, ok := parsePath(r.URL.Path)
	if !ok || r.URL.RawQuery != "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	host, ok := h.requestHost(r.Host)
	if !ok {
		http.NotFound(w, r)
		return
	}
	e, err := h.Store.Get(r.Context(), kind, name)
	switch {
	case errors.Is(err, ErrNotFound):
		http.NotFound(w, r)
		return
	case err != nil:
		h.Log.Warn("challenge store unavailable", logging.Hostname(host), zap.Error(err))
		http.Error(w, "challenge store unavailable", http.StatusServiceUnavailable)
		return
	}
	if e.Host != host {
		http.NotFound(w, r)
		return
	}
	h.Log.Debug("challenge served", logging.Hostname(host), zap.String("kind", string(kind)))
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write([]byte(e.Content))
}

// parsePath accepts exactly the two path families with a well-formed last segment.
func parsePath(p string) (Kind, string, bool) {
	switch {
	case strings.HasPrefix(p, acmePrefix):
		name := p[len(acmePrefix):]
		return KindACME, name, validToken(name)
	case strings.HasPrefix(p, pkiPrefix):
		name := p[len(pkiPrefix):]
		return KindPKIValidation, name, validFile(name)
	}
	return "", "", false
}

// validToken: base64url without padding (RFC 8555 section 8.3).
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validFile(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// requestHost normalizes a Host header, dropping a port (the CA sends one).
func (h *Handler) requestHost(raw string) (string, bool) {
	if host, port, err := net.SplitHostPort(raw); err == nil && port != "" {
		raw = host
	}
	name, err := h.Policy.Normalize(raw)
	return name, err == nil
}
