package worker

import (
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/redisconn/redistest"
)

func TestBudget(t *testing.T) {
	rdb, prefix := redistest.New(t)
	b := NewBudget(rdb, prefix, Limits{OrdersPer3h: 3, CertsPerDomainPer7d: 2})
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		u, err := b.Admit(ctx, "a.example", at, "a")
		if err != nil || !u.Admitted || u.Orders3h != i+1 {
			t.Fatalf("order %d: %+v, %v", i+1, u, err)
		}
	}
	u, err := b.Admit(ctx, "b.example", t0.Add(3*time.Minute), "b")
	if err != nil || u.Admitted || !u.RetryAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("4th order in 3 h: %+v, %v; want refused until the first leaves the window", u, err)
	}
	if u, _ := b.Admit(ctx, "b.example", t0.Add(3*time.Hour+time.Second), "b"); !u.Admitted || u.Orders3h != 3 {
		t.Fatalf("after the window moved: %+v", u)
	}

	for i := range 2 {
		if n, err := b.Issued(ctx, "c.example", t0.Add(time.Duration(i)*time.Hour), "c"); err != nil || n != i+1 {
			t.Fatalf("certificate %d: %d, %v", i+1, n, err)
		}
	}
	u, err = b.Admit(ctx, "c.example", t0.Add(4*time.Hour), "c")
	if err != nil || u.Admitted || u.Certs7d != 2 || !u.RetryAt.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("3rd certificate for c.example in a week: %+v, %v; want refused", u, err)
	}
	if u, _ := b.Admit(ctx, "d.example", t0.Add(4*time.Hour), "d"); !u.Admitted {
		t.Fatalf("another registered domain is not limited by c.example's count: %+v", u)
	}
}
