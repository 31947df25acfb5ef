package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// KeyPrefix starts every tenant API key, so that a leaked key is recognisable by secret
// scanners and a pasted admin key or token of another system is refused without a lookup.
const KeyPrefix = "ptk_"

// keyEncoding is lowercase base32 without padding: case-insensitive readers and URL-safe.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// keyBytes is the entropy of a key: 256 bits.
const keyBytes = 32

// keyLength is the length of a key as text.
var keyLength = len(KeyPrefix) + keyEncoding.EncodedLen(keyBytes)

// NewKey returns a fresh tenant API key ("ptk_" and 52 base32 characters of 32 random
// bytes) and the hash to store for it.
func NewKey() (key, hash string) {
	b := make([]byte, keyBytes)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	key = KeyPrefix + keyEncoding.EncodeToString(b)
	return key, HashKey(key)
}

// HashKey is the stored form of a key: hex SHA-256. A fast unsalted hash is right here
// because keys carry 256 random bits: there is no dictionary to try, and a slow password
// hash would only add latency to every request.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// wellFormedKey reports whether s has the shape of a tenant key, so that malformed
// credentials are refused without a store lookup.
func wellFormedKey(s string) bool {
	if len(s) != keyLength || !strings.HasPrefix(s, KeyPrefix) {
		return false
	}
	_, err := keyEncoding.DecodeString(s[len(KeyPrefix):])
	return err == nil
}
