// Package rewrap is the background pass that moves every stored private key to the
// current key-encryption key after a KEK rotation (see package localkek). It re-wraps
// only the data key of each envelope; the key ciphertext, the certificate and its
// version stay as they are, so gateways see no change.
//
// The pass walks every certificate through the expiry index (every stored certificate
// is indexed), and swaps each record's key reference with a compare-and-swap on
// (version, reference): a put that lands meanwhile wins, and already uses the current
// KEK. Running it on several replicas at once is safe, only wasteful.
package rewrap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/services/certstore/internal/store"
)

// Rewrapper re-wraps one reference under the current KEK (localkek.Backend).
type Rewrapper interface {
	Rewrap(name string, ref []byte) (newRef []byte, changed bool, err error)
}

// Result counts what a pass did.
type Result struct {
	// Checked is the number of certificates looked at.
	Checked int
	// Rewrapped were moved to the current KEK.
	Rewrapped int
	// Failed could not be re-wrapped (their KEK is missing from the keyring, for
	// instance); they are logged by name.
	Failed int
}

// everything is a ListDue bound after every renew time.
var everything = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Pass re-wraps every key not yet under the current KEK.
func Pass(ctx context.Context, st store.Store, rw Rewrapper, log *zap.Logger) (Result, error) {
	var res Result
	token := ""
	for {
		page, next, err := st.ListDue(ctx, everything, 500, token)
		if err != nil {
			return res, fmt.Errorf("list certificates: %w", err)
		}
		for _, d := range page {
			res.Checked++
			changed, err := one(ctx, st, rw, d.Name)
			switch {
			case err != nil && ctx.Err() != nil:
				return res, ctx.Err()
			case err != nil:
				res.Failed++
				log.Warn("could not re-wrap a private key", logging.Hostname(d.Name), zap.Error(err))
			case changed:
				res.Rewrapped++
			}
		}
		if next == "" {
			return res, nil
		}
		token = next
	}
}

// one re-wraps the key of one certificate, retrying when a put races with it.
func one(ctx context.Context, st store.Store, rw Rewrapper, name string) (bool, error) {
	for range 3 {
		c, err := st.GetCertificate(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		newRef, changed, err := rw.Rewrap(name, c.KeyRef)
		if err != nil || !changed {
			return false, err
		}
		err = st.SwapKeyRef(ctx, name, c.Version, c.KeyRef, newRef)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		return err == nil, err
	}
	return false, errors.New("the record kept changing")
}
