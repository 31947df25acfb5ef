package mtls

import "time"

// SetReloadInterval shortens how often key pairs are re-read, for tests.
func SetReloadInterval(d time.Duration) (restore func()) {
	old := reloadInterval
	reloadInterval = d
	return func() { reloadInterval = old }
}
