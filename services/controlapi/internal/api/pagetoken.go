package api

import (
	"encoding/base64"
	"encoding/json"

	"github.com/portico-dev/portico/pkg/errkind"
)

// Page sizes: 0 means defaultPageSize; more than maxPageSize is refused.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0 || n > maxPageSize:
		return 0, errkind.Invalid("page_size", "range", "must be 1 to %d (0 means %d)", maxPageSize, defaultPageSize)
	}
	return int(n), nil
}

// pageQuery is what a page token is bound to: a token is valid only for the listing that
// produced it (same kind, tenant and status filter), so a client cannot turn a token of
// one query into a cursor of another. Tokens are opaque to clients (base64url of JSON);
// they hold nothing secret, only the last key of the previous page.
type pageQuery struct {
	Kind     string `json:"k"`
	TenantID string `json:"t,omitempty"`
	Status   int32  `json:"s,omitempty"`
	After    string `json:"a"`
}

func (q pageQuery) encode(after string) string {
	q.After = after
	b, _ := json.Marshal(q) // cannot fail: strings and ints
	return base64.RawURLEncoding.EncodeToString(b)
}

// decode returns the cursor of token, checking it belongs to q; empty is the first page.
func (q pageQuery) decode(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	bad := errkind.Invalid("page_token", "page-token", "is not a page token of this listing (pass next_page_token back unchanged, with the same filters)")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", bad
	}
	var got pageQuery
	if err := json.Unmarshal(b, &got); err != nil || got.After == "" {
		return "", bad
	}
	after := got.After
	got.After = ""
	if got != q {
		return "", bad
	}
	return after, nil
}
