// Package awssm is the AWS Secrets Manager secrets backend: one secret per private key,
// named `<prefix><certificate name>/<random id>`, holding the PKCS#8 DER key as its
// binary value. Region, credentials and endpoint come from the standard AWS
// configuration (environment, shared files, instance or pod roles); Options.Endpoint
// overrides the endpoint.
//
// Every put creates a new secret, and the previous certificate's secret is deleted
// (without a recovery window) only after the record switched to the new one, so a
// reader never meets a record whose secret is gone except in the instant between a
// record read and a key read, which certstore's Lookup retries.
//
// Certificate names may be wildcards; `*` is not allowed in a secret name, so
// `*.example.com` becomes `_.example.com` (an underscore never appears in a hostname,
// so no exact name maps to the same secret).
package awssm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/portico-dev/portico/services/certstore/internal/secrets"
)

// Options configure the backend.
type Options struct {
	// Prefix starts every secret name ("portico/certstore/").
	Prefix string
	// Endpoint overrides the Secrets Manager endpoint URL; empty: standard resolution.
	Endpoint string
	// ProbeEvery limits how often Probe calls AWS (default 30 s); between calls it
	// returns the last result.
	ProbeEvery time.Duration
}

// Backend is the AWS Secrets Manager backend.
type Backend struct {
	client *secretsmanager.Client
	opts   Options

	probeMu   sync.Mutex
	probedAt  time.Time
	probeErr  error
	probeName string
}

var _ secrets.Backend = (*Backend)(nil)

// New loads the standard AWS configuration and returns a backend.
func New(ctx context.Context, o Options) (*Backend, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("AWS region is not configured (set AWS_REGION or a profile's region)")
	}
	client := secretsmanager.NewFromConfig(cfg, func(opts *secretsmanager.Options) {
		if o.Endpoint != "" {
			opts.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 30 * time.Second
	}
	return &Backend{client: client, opts: o, probeName: o.Prefix + "health-probe"}, nil
}

// Kind is "aws".
func (b *Backend) Kind() string { return "aws" }

// secretBase is the name prefix of name's secrets.
func (b *Backend) secretBase(name string) string {
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = "_." + rest
	}
	return b.opts.Prefix + name + "/"
}

// Seal creates a new secret holding key and returns its name.
func (b *Backend) Seal(ctx context.Context, name string, key []byte) ([]byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	secretName := b.secretBase(name) + hex.EncodeToString(id)
	_, err := b.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(secretName),
		SecretBinary: key,
		Description:  aws.String("Private key of the certificate of " + name + ", kept by Portico certstore"),
		Tags:         []types.Tag{{Key: aws.String("portico-certificate"), Value: aws.String(name)}},
	})
	if err != nil {
		return nil, fmt.Errorf("create secret %s: %w", secretName, err)
	}
	return []byte(secretName), nil
}

// checkRef refuses a reference that does not belong to name.
func (b *Backend) checkRef(name string, ref []byte) error {
	if !strings.HasPrefix(string(ref), b.secretBase(name)) {
		return fmt.Errorf("secret %q does not belong to %s", ref, name)
	}
	return nil
}

// Open reads the secret named by ref.
func (b *Backend) Open(ctx context.Context, name string, ref []byte) ([]byte, error) {
	if err := b.checkRef(name, ref); err != nil {
		return nil, err
	}
	out, err := b.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(string(ref))})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("secret %s: %w", ref, secrets.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", ref, err)
	}
	if len(out.SecretBinary) == 0 {
		return nil, fmt.Errorf("secret %s holds no binary value", ref)
	}
	return out.SecretBinary, nil
}

// Remove deletes the secret named by ref at once (no recovery window: the key is
// never served again, and a recovery window would keep its name taken).
func (b *Backend) Remove(ctx context.Context, name string, ref []byte) error {
	if err := b.checkRef(name, ref); err != nil {
		return err
	}
	_, err := b.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId:                   aws.String(string(ref)),
		ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete secret %s: %w", ref, err)
	}
	return nil
}

// Probe checks that Secrets Manager answers with these credentials: reading a secret
// that does not exist must say ResourceNotFound (not AccessDenied, not a network
// error). It calls AWS at most every ProbeEvery.
func (b *Backend) Probe(ctx context.Context) error {
	b.probeMu.Lock()
	defer b.probeMu.Unlock()
	if !b.probedAt.IsZero() && time.Since(b.probedAt) < b.opts.ProbeEvery {
		return b.probeErr
	}
	_, err := b.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(b.probeName)})
	var nf *types.ResourceNotFoundException
	if err == nil || errors.As(err, &nf) {
		b.probeErr = nil
	} else {
		b.probeErr = fmt.Errorf("secrets manager: %w", err)
	}
	b.probedAt = time.Now()
	return b.probeErr
}
