package main

import (
	"context"
	"flag"

	"github.com/portico-dev/portico/services/certstore/internal/secrets/awssm"
)

func openAWS(ctx context.Context, s SecretsConfig) (*awssm.Backend, error) {
	return awssm.New(ctx, awssm.Options{Prefix: s.AWSPrefix, Endpoint: s.AWSEndpoint})
}

func flagSetKEK() *flag.FlagSet { return flag.NewFlagSet("certstore kek", flag.ContinueOnError) }
