package localkek_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/services/certstore/internal/secrets"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/localkek"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/secretstest"
)

var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func newKeyringFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	created, err := localkek.CreateFile(path, now)
	if err != nil || !created {
		t.Fatalf("CreateFile: created=%v err=%v", created, err)
	}
	return path
}

func load(t *testing.T, path string) *localkek.Backend {
	t.Helper()
	ring, err := localkek.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	return localkek.New(ring)
}

func TestContract(t *testing.T) {
	secretstest.Run(t, func(t *testing.T) secrets.Backend { return load(t, newKeyringFile(t)) }, false)
}

func TestCreateFileKeepsAnExistingOne(t *testing.T) {
	path := newKeyringFile(t)
	before, _ := os.ReadFile(path)
	created, err := localkek.CreateFile(path, now)
	if err != nil || created {
		t.Fatalf("second CreateFile: created=%v err=%v, want false, nil", created, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("CreateFile changed an existing keyring")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestRotation walks the documented rotation: keys sealed under the first KEK still open
// after a new KEK is added; new keys use the new KEK; Rewrap moves old references to the
// new KEK without changing the key; once the old KEK is removed, re-wrapped references
// open and un-rewrapped ones do not.
func TestRotation(t *testing.T) {
	path := newKeyringFile(t)
	oldBackend := load(t, path)
	key := []byte("private key bytes")
	oldRef, err := oldBackend.Seal(t.Context(), "a.example.com", key)
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := localkek.KEKID(oldRef)

	newID, err := localkek.Rotate(path, now)
	if err != nil {
		t.Fatal(err)
	}
	rotated := load(t, path)
	if got, err := rotated.Open(t.Context(), "a.example.com", oldRef); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("old reference after rotation: %q, %v", got, err)
	}
	fresh, _ := rotated.Seal(t.Context(), "b.example.com", key)
	if id, _ := localkek.KEKID(fresh); id != newID || id == oldID {
		t.Fatalf("new seal uses KEK %q, want the new current %q", id, newID)
	}

	rewrapped, changed, err := rotated.Rewrap("a.example.com", oldRef)
	if err != nil || !changed {
		t.Fatalf("Rewrap: changed=%v err=%v", changed, err)
	}
	if id, _ := localkek.KEKID(rewrapped); id != newID {
		t.Fatalf("re-wrapped reference uses %q, want %q", id, newID)
	}
	if _, changed, _ := rotated.Rewrap("a.example.com", rewrapped); changed {
		t.Fatal("re-wrapping a current reference changed it")
	}

	// Retire the old KEK: keep only the first (current) line.
	text, _ := os.ReadFile(path)
	var kept []string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, newID+":") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	retired := load(t, path)
	if got, err := retired.Open(t.Context(), "a.example.com", rewrapped); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("re-wrapped reference after retiring the old KEK: %q, %v", got, err)
	}
	_, err = retired.Open(t.Context(), "a.example.com", oldRef)
	if err == nil || !strings.Contains(err.Error(), oldID) {
		t.Fatalf("un-rewrapped reference after retiring its KEK: err = %v, want one naming KEK %q", err, oldID)
	}
}

func TestParseKeyringRefusals(t *testing.T) {
	good := "k1:" + strings.Repeat("A", 43) + "="
	tests := []struct {
		name, text, want string
	}{
		{"empty", "# nothing\n\n", "no KEK"},
		{"no separator", "k1" + strings.Repeat("A", 44), "want <id>:<base64 key>"},
		{"bad id", "k 1:" + strings.Repeat("A", 43) + "=", "want <id>"},
		{"short key", "k1:AAAA", "32 bytes"},
		{"duplicate id", good + "\n" + good, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := localkek.ParseKeyring([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := localkek.ParseKeyring([]byte(good)); err != nil {
		t.Fatalf("a good keyring: %v", err)
	}
}

func TestTamperedReferenceRefused(t *testing.T) {
	b := load(t, newKeyringFile(t))
	ref, _ := b.Seal(t.Context(), "a.example.com", []byte("key"))
	for _, pos := range []int{len(ref) - 1, len(ref) - 30, 10} {
		bad := bytes.Clone(ref)
		bad[pos] ^= 1
		if _, err := b.Open(t.Context(), "a.example.com", bad); err == nil {
			t.Errorf("flipping byte %d: Open succeeded", pos)
		}
	}
	if _, err := b.Open(t.Context(), "a.example.com", ref[:20]); err == nil {
		t.Error("truncated reference opened")
	}
}
