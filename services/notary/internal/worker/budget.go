package worker

import "github.com/portico-dev/portico/services/notary/internal/budget"

// Limits are the CA's rate limits the notary keeps under (package budget counts them).
type Limits = budget.Limits

// share is used/limit for the gauge (0 when the limit is off).
func share(used, limit int) float64 {
	if limit <= 0 {
		return 0
	}
	return float64(used) / float64(limit)
}
