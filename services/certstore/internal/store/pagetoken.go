package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DueCursor is the position a ListDue page ended at: the last entry's renew time and
// name. Implementations encode it as the opaque page token with EncodeDueCursor.
type DueCursor struct {
	RenewTime time.Time
	Name      string
}

// After reports whether an entry sorts after the cursor (by renew time, then name).
func (c DueCursor) After(renew time.Time, name string) bool {
	if !renew.Equal(c.RenewTime) {
		return renew.After(c.RenewTime)
	}
	return name > c.Name
}

const tokenVersion = "d1"

// EncodeDueCursor makes the opaque page token for c.
func EncodeDueCursor(c DueCursor) string {
	raw := tokenVersion + "|" + strconv.FormatInt(c.RenewTime.UnixMilli(), 10) + "|" + c.Name
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeDueCursor reads a page token; ErrBadPageToken when it is not one.
func DecodeDueCursor(token string) (DueCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return DueCursor{}, fmt.Errorf("%w: %v", ErrBadPageToken, err)
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != tokenVersion || parts[2] == "" {
		return DueCursor{}, ErrBadPageToken
	}
	ms, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return DueCursor{}, fmt.Errorf("%w: %v", ErrBadPageToken, err)
	}
	return DueCursor{RenewTime: time.UnixMilli(ms), Name: parts[2]}, nil
}

// CheckPageSize reports a page size outside 1..MaxPageSize.
func CheckPageSize(n int) error {
	if n < 1 || n > MaxPageSize {
		return fmt.Errorf("page size %d is outside 1..%d", n, MaxPageSize)
	}
	return nil
}

// Clone returns a deep copy of c.
func (c Certificate) Clone() Certificate {
	out := c
	out.Chain = make([][]byte, len(c.Chain))
	for i, der := range c.Chain {
		out.Chain[i] = append([]byte(nil), der...)
	}
	out.KeyRef = append([]byte(nil), c.KeyRef...)
	return out
}
