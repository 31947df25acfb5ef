package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"
)

// dynamoEnv is what the services need to reach dynalite through the standard AWS
// configuration: a region and credentials (dynalite checks none).
var dynamoEnv = []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
	"AWS_EC2_METADATA_DISABLED=true"}

// startDynalite runs dynalite (the DynamoDB implementation installed by `make dynalite`)
// in memory at o.DynamoDB: the services then keep everything in DynamoDB tables under
// o.KeyPrefix and Redis is not used.
func startDynalite(ctx context.Context, sup *supervisor, o options) error {
	if _, err := os.Stat(o.Dynalite); err != nil {
		return fmt.Errorf("dynalite is not installed at %s: run `make dynalite` (%w)", o.Dynalite, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("node is not installed (dynalite runs on Node.js): %w", err)
	}
	host, port, err := net.SplitHostPort(o.DynamoDB)
	if err != nil {
		return err
	}
	p, err := sup.start("dynalite", node, nil, o.Dynalite, "--host", host, "--port", port,
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	if err != nil {
		return err
	}
	return waitTCP(ctx, p, o.DynamoDB, 15*time.Second)
}

// storageArgs are the services' settings for the chosen store.
func storageArgs(o options) (args, env []string) {
	if o.Store != storeDynamoDB {
		return []string{"-redis-addr", o.Redis, "-redis-key-prefix", o.KeyPrefix}, nil
	}
	return []string{"-store", storeDynamoDB, "-dynamodb-endpoint", "http://" + o.DynamoDB,
		"-dynamodb-table-prefix", o.KeyPrefix + "-", "-dynamodb-create-tables"}, dynamoEnv
}
