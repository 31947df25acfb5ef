package domains

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WakeCovered makes every domain of tenantID that a wildcard certificate stored under
// name serves (CoveredBy == name) due at now, so the notary moves each to a certificate
// of its own at once when the wildcard domain leaves, instead of at its next scheduled
// check. It returns how many it woke. Call it after the wildcard's record is deleted;
// deletion is rare, so reading the tenant's domains page by page is acceptable.
func WakeCovered(ctx context.Context, s DomainStore, tenantID, name string, now time.Time) (int, error) {
	woken := 0
	q := ListQuery{TenantID: tenantID, Limit: 500}
	for {
		page, err := s.ListDomains(ctx, q)
		if err != nil {
			return woken, fmt.Errorf("list %s's domains covered by %s: %w", tenantID, name, err)
		}
		for _, d := range page {
			if d.CoveredBy != name {
				continue
			}
			ok, err := wake(ctx, s, d, name, now)
			if err != nil {
				return woken, err
			}
			if ok {
				woken++
			}
		}
		if len(page) < q.Limit {
			return woken, nil
		}
		q.After = page[len(page)-1].Hostname
	}
}

// wake sets d due now unless it already is or no longer names the wildcard, retrying
// compare-and-swap conflicts with a fresh read.
func wake(ctx context.Context, s DomainStore, d Domain, name string, now time.Time) (bool, error) {
	for range 5 {
		if d.CoveredBy != name || (!d.NextAttemptAt.IsZero() && !d.NextAttemptAt.After(now)) {
			return false, nil
		}
		d.NextAttemptAt = now
		_, err := s.UpdateDomain(ctx, d)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, ErrNotFound):
			return false, nil
		case !errors.Is(err, ErrConflict):
			return false, fmt.Errorf("wake %s: %w", d.Hostname, err)
		}
		if d, err = s.GetDomain(ctx, d.Hostname); err != nil {
			if errors.Is(err, ErrNotFound) {
				return false, nil
			}
			return false, fmt.Errorf("wake %s: %w", d.Hostname, err)
		}
	}
	return false, fmt.Errorf("wake %s: the record kept changing", d.Hostname)
}
