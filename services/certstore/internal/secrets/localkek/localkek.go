// Package localkek is certstore's default secrets backend: envelope encryption with
// AES-256-GCM under a key-encryption key (KEK) read from a file. The ciphertext is the
// reference the certificate record keeps, so it is stored in Redis with the record.
//
// # Envelope
//
// Every private key gets a fresh random 256-bit data key (DEK). The key is encrypted
// with the DEK, and the DEK is wrapped (encrypted) with the current KEK. The reference
// holds, in order:
//
//	"lk1" | len(kek id) | kek id | wrap nonce (12) | wrapped DEK (32+16) | key nonce (12) | key ciphertext (+16)
//
// Both encryptions authenticate the certificate name as additional data (the wrap also
// the KEK id), so a reference copied to another record does not open.
//
// # Keyring and rotation
//
// The KEK file is a keyring: one KEK per line as `<id>:<base64 of 32 bytes>`, `#`
// comments and blank lines ignored. The first KEK is the current one and wraps every
// new DEK; the others only unwrap. Rotation: add a new first line (`certstore kek rotate
// -kek-file F` does it), roll the replicas, let a re-wrap pass (`-kek-rewrap`) re-wrap
// every DEK under the new KEK (the key ciphertext itself is not touched), then remove
// the old line. Rewrap tells which references still need the pass.
package localkek

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/portico-dev/portico/services/certstore/internal/secrets"
)

const (
	magic     = "lk1"
	keySize   = 32
	nonceSize = 12
	tagSize   = 16
)

// KEK is one key-encryption key.
type KEK struct {
	ID   string
	aead cipher.AEAD
}

// Keyring holds the current KEK and the previous ones.
type Keyring struct {
	current *KEK
	byID    map[string]*KEK
}

// Current is the id of the KEK that wraps new data keys.
func (r *Keyring) Current() string { return r.current.ID }

// Has reports whether the keyring holds the KEK id.
func (r *Keyring) Has(id string) bool { _, ok := r.byID[id]; return ok }

// Keyring is the backend's keyring.
func (b *Backend) Keyring() *Keyring { return b.ring }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseKeyring reads keyring text (see the package documentation).
func ParseKeyring(text []byte) (*Keyring, error) {
	r := &Keyring{byID: map[string]*KEK{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		if !ok || !idPattern.MatchString(id) {
			return nil, fmt.Errorf("keyring line %d: want <id>:<base64 key> with an id of letters, digits, '.', '_' or '-'", n)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != keySize {
			return nil, fmt.Errorf("keyring line %d (KEK %q): the key must be %d bytes in standard base64", n, id, keySize)
		}
		if _, dup := r.byID[id]; dup {
			return nil, fmt.Errorf("keyring line %d: KEK id %q appears twice", n, id)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, err
		}
		k := &KEK{ID: id, aead: aead}
		r.byID[id] = k
		if r.current == nil {
			r.current = k
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if r.current == nil {
		return nil, errors.New("keyring holds no KEK")
	}
	return r, nil
}

// LoadKeyring reads the keyring file at path.
func LoadKeyring(path string) (*Keyring, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read KEK file: %w", err)
	}
	r, err := ParseKeyring(text)
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: %w", path, err)
	}
	return r, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewKEKLine returns a keyring line with a fresh random KEK, its id made from the date
// and random hex (`kek-20260102-1a2b3c`).
func NewKEKLine(now time.Time) (string, error) {
	key := make([]byte, keySize)
	suffix := make([]byte, 3)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	if _, err := rand.Read(suffix); err != nil {
		return "", err
	}
	id := fmt.Sprintf("kek-%s-%x", now.UTC().Format("20060102"), suffix)
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// CreateFile writes a keyring with one fresh KEK at path (mode 0600) unless a file is
// already there. created is false when the file existed.
func CreateFile(path string, now time.Time) (created bool, err error) {
	line, err := NewKEKLine(now)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, werr := fmt.Fprintf(f, "# certstore key-encryption keys; the first one wraps new keys.\n%s\n", line)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr == nil, werr
}

// Rotate puts a fresh KEK first in the keyring file at path, keeping the others for
// reading, and returns the new id. The file is replaced atomically.
func Rotate(path string, now time.Time) (string, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read KEK file: %w", err)
	}
	if _, err := ParseKeyring(old); err != nil {
		return "", fmt.Errorf("KEK file %s: %w", path, err)
	}
	line, err := NewKEKLine(now)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# certstore key-encryption keys; the first one wraps new keys.\n%s\n", line)
	for l := range strings.SplitSeq(string(old), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(t + "\n")
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kek-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(line, ":")
	return id, nil
}

// Backend is the local secrets backend.
type Backend struct {
	ring *Keyring
}

var _ secrets.Backend = (*Backend)(nil)

// New returns a backend over ring.
func New(ring *Keyring) *Backend { return &Backend{ring: ring} }

// Kind is "local".
func (b *Backend) Kind() string { return "local" }

func wrapAAD(kekID, name string) []byte {
	return []byte("portico certstore dek\x00" + kekID + "\x00" + name)
}
func keyAAD(name string) []byte { return []byte("portico certstore key\x00" + name) }

// Seal encrypts key under a fresh data key wrapped by the current KEK.
func (b *Backend) Seal(ctx context.Context, name string, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dek := make([]byte, keySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	dekAEAD, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	ref := b.wrap(b.ring.current, name, dek)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ref = append(ref, nonce...)
	return dekAEAD.Seal(ref, nonce, key, keyAAD(name)), nil
}

// wrap returns the reference header: magic, KEK id, and the DEK wrapped by kek.
func (b *Backend) wrap(kek *KEK, name string, dek []byte) []byte {
	nonce := make([]byte, nonceSize)
	rand.Read(nonce) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	out := make([]byte, 0, len(magic)+1+len(kek.ID)+nonceSize+keySize+tagSize+nonceSize+tagSize+256)
	out = append(out, magic...)
	out = append(out, byte(len(kek.ID)))
	out = append(out, kek.ID...)
	out = append(out, nonce...)
	return kek.aead.Seal(out, nonce, dek, wrapAAD(kek.ID, name))
}

// parsed is a reference split into its parts.
type parsed struct {
	kekID      string
	wrapNonce  []byte
	wrappedDEK []byte
	body       []byte // key nonce and ciphertext
}

var errMalformed = errors.New("malformed local key reference")

func parse(ref []byte) (parsed, error) {
	if !bytes.HasPrefix(ref, []byte(magic)) || len(ref) < len(magic)+1 {
		return parsed{}, errMalformed
	}
	rest := ref[len(magic):]
	n := int(rest[0])
	rest = rest[1:]
	if len(rest) < n+nonceSize+keySize+tagSize+nonceSize+tagSize {
		return parsed{}, errMalformed
	}
	p := parsed{kekID: string(rest[:n])}
	rest = rest[n:]
	p.wrapNonce, rest = rest[:nonceSize], rest[nonceSize:]
	p.wrappedDEK, p.body = rest[:keySize+tagSize], rest[keySize+tagSize:]
	return p, nil
}

func (b *Backend) unwrap(p parsed, name string) ([]byte, error) {
	kek, ok := b.ring.byID[p.kekID]
	if !ok {
		return nil, fmt.Errorf("key of %s is wrapped by KEK %q, which is not in the keyring", name, p.kekID)
	}
	dek, err := kek.aead.Open(nil, p.wrapNonce, p.wrappedDEK, wrapAAD(p.kekID, name))
	if err != nil {
		return nil, fmt.Errorf("key of %s: data key does not unwrap with KEK %q (wrong KEK or another name's reference)", name, p.kekID)
	}
	return dek, nil
}

// Open decrypts the key behind ref with whichever KEK wrapped it.
func (b *Backend) Open(ctx context.Context, name string, ref []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := parse(ref)
	if err != nil {
		return nil, fmt.Errorf("key of %s: %w", name, err)
	}
	dek, err := b.unwrap(p, name)
	if err != nil {
		return nil, err
	}
	dekAEAD, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	key, err := dekAEAD.Open(nil, p.body[:nonceSize], p.body[nonceSize:], keyAAD(name))
	if err != nil {
		return nil, fmt.Errorf("key of %s: ciphertext does not authenticate", name)
	}
	return key, nil
}

// Remove does nothing: the ciphertext is the reference, and goes with the record.
func (b *Backend) Remove(ctx context.Context, name string, ref []byte) error { return ctx.Err() }

// KEKID returns the id of the KEK that wrapped ref.
func KEKID(ref []byte) (string, error) {
	p, err := parse(ref)
	if err != nil {
		return "", err
	}
	return p.kekID, nil
}

// Rewrap returns ref with its data key re-wrapped under the current KEK; the key
// ciphertext is kept as it is. changed is false when ref already uses the current KEK.
func (b *Backend) Rewrap(name string, ref []byte) (newRef []byte, changed bool, err error) {
	p, err := parse(ref)
	if err != nil {
		return nil, false, fmt.Errorf("key of %s: %w", name, err)
	}
	if p.kekID == b.ring.current.ID {
		return ref, false, nil
	}
	dek, err := b.unwrap(p, name)
	if err != nil {
		return nil, false, err
	}
	out := b.wrap(b.ring.current, name, dek)
	return append(out, p.body...), true, nil
}
