package rewrap_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/portico-dev/portico/services/certstore/internal/rewrap"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/localkek"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/memstore"
)

func backend(t *testing.T, text string) *localkek.Backend {
	t.Helper()
	ring, err := localkek.ParseKeyring([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return localkek.New(ring)
}

func TestPass(t *testing.T) {
	now := time.Now()
	line := func() string {
		l, err := localkek.NewKEKLine(now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	oldKEK, newKEK, lostKEK := line(), line(), line()
	before := backend(t, oldKEK)
	lost := backend(t, lostKEK)
	after := backend(t, newKEK+"\n"+oldKEK)

	st := memstore.New(nil)
	put := func(name string, b *localkek.Backend) {
		ref, err := b.Seal(t.Context(), name, []byte("key of "+name))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.PutCertificate(t.Context(), store.Certificate{Name: name, Chain: [][]byte{{4, 0}}, KeyRef: ref, RenewTime: now, FencingToken: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		put(fmt.Sprintf("old%d.example.com", i), before)
	}
	put("current.example.com", after)
	put("lost.example.com", lost) // wrapped by a KEK the keyring does not hold

	res, err := rewrap.Pass(t.Context(), st, after, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res != (rewrap.Result{Checked: 5, Rewrapped: 3, Failed: 1}) {
		t.Fatalf("result %+v, want 5 checked, 3 re-wrapped, 1 failed", res)
	}
	newID, _, _ := strings.Cut(newKEK, ":")
	for i := range 3 {
		name := fmt.Sprintf("old%d.example.com", i)
		c, _ := st.GetCertificate(t.Context(), name)
		if id, _ := localkek.KEKID(c.KeyRef); id != newID || c.Version != 1 {
			t.Fatalf("%s: KEK %q version %d, want %q and the version unchanged", name, id, c.Version, newID)
		}
		key, err := backend(t, newKEK).Open(t.Context(), name, c.KeyRef)
		if err != nil || string(key) != "key of "+name {
			t.Fatalf("%s does not open with the new KEK alone: %q, %v", name, key, err)
		}
	}
	again, err := rewrap.Pass(t.Context(), st, after, zaptest.NewLogger(t))
	if err != nil || again.Rewrapped != 0 {
		t.Fatalf("second pass: %+v, %v; want nothing left to re-wrap", again, err)
	}
}
