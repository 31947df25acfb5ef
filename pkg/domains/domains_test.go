package domains_test

import (
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/domains"
)

func TestFencingToken(t *testing.T) {
	created := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	first := domains.Domain{CreatedAt: created, Version: 7}
	next := first
	next.Version++
	again := domains.Domain{CreatedAt: created.Add(time.Millisecond), Version: 1}

	if next.FencingToken() != first.FencingToken()+1 {
		t.Errorf("the token does not follow the version: %d then %d", first.FencingToken(), next.FencingToken())
	}
	if again.FencingToken() <= first.FencingToken() {
		t.Errorf("a re-created domain's token %d is not above the old one's %d", again.FencingToken(), first.FencingToken())
	}
	if !first.OwnsFencingToken(next.FencingToken()) {
		t.Error("a later version's token is not the record's own")
	}
	if again.OwnsFencingToken(first.FencingToken()) {
		t.Error("an earlier record's token counts as the new record's")
	}
	if first.FencingToken() < 1<<53 {
		t.Errorf("token %d fits a float64: the stores' exact comparison is not exercised by real tokens", first.FencingToken())
	}
}
