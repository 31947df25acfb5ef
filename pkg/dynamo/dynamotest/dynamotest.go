// Package dynamotest gives tests a real DynamoDB API: dynalite (the npm package, a
// DynamoDB implementation in Node.js), started once per test binary on a loopback port,
// or the endpoint in TEST_DYNAMODB_ENDPOINT. Each test gets tables of its own under a
// fresh random prefix, deleted when it ends.
//
// A package whose tests use it runs them through Main, which stops the dynalite it
// started:
//
//	func TestMain(m *testing.M) { dynamotest.Main(m) }
//
// dynalite is run by $DYNALITE, or by bin/dynalite/run.js (tools/dynalite/run.js: its CLI,
// made to survive clients that hang up mid-request) in
// the repository (`make dynalite` installs it there; `make test` does so when it is
// missing). A test that cannot start it fails: a skipped storage test would pass off
// nothing as coverage.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/dynamo"
)

// EndpointEnv names a running DynamoDB API for tests (no dynalite is started then).
const EndpointEnv = "TEST_DYNAMODB_ENDPOINT"

var (
	mu       sync.Mutex
	started  *exec.Cmd
	endpoint string
	startErr error
)

// Main runs the tests and then stops the dynalite started for them, and exits.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop ends the dynalite this process started, if any.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if started != nil {
		_ = started.Process.Kill()
		_ = started.Wait()
		started = nil
	}
}

// Endpoint returns the DynamoDB endpoint URL for tests, starting dynalite on first use.
func Endpoint(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if e := os.Getenv(EndpointEnv); e != "" {
		return e
	}
	if endpoint == "" && startErr == nil {
		endpoint, startErr = start()
	}
	if startErr != nil {
		t.Fatalf("dynalite: %v", startErr)
	}
	return endpoint
}

// Client returns a client for the test endpoint (region us-east-1, dummy credentials:
// dynalite checks none).
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	return NewClient(Endpoint(t))
}

// NewClient returns a client for endpoint with a test region and dummy credentials.
func NewClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// Prefix returns a fresh random table prefix ("test-<random>-").
func Prefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b) + "-"
}

// NewTables creates the named tables (dynamo.Table* constants) under a fresh prefix and
// deletes them when the test ends. It returns the client and the prefix.
func NewTables(t testing.TB, tables ...string) (*dynamodb.Client, string) {
	t.Helper()
	client := Client(t)
	prefix := Prefix()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dynamo.CreateTables(ctx, client, prefix, zap.NewNop(), tables...); err != nil {
		t.Fatalf("create test tables: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, table := range tables {
			if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(prefix + table)}); err != nil {
				t.Errorf("delete test table %s%s: %v", prefix, table, err)
			}
		}
	})
	return client, prefix
}

// Table creates one table for the test and returns it.
func Table(t testing.TB, table string) dynamo.Table {
	t.Helper()
	client, prefix := NewTables(t, table)
	return dynamo.NewTable(client, prefix, table)
}

// CLI finds the script that runs dynalite: $DYNALITE, or bin/dynalite/run.js in the
// first directory at or above the working directory that has a go.work.
func CLI() (string, error) {
	if p := os.Getenv("DYNALITE"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			cli := filepath.Join(dir, "bin", "dynalite", "run.js")
			if _, err := os.Stat(cli); err != nil {
				return "", fmt.Errorf("%s is missing: run `make dynalite` (or set DYNALITE, or %s)", cli, EndpointEnv)
			}
			return cli, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory to find bin/dynalite: set DYNALITE or " + EndpointEnv)
		}
		dir = parent
	}
}

// start runs dynalite in memory on a free loopback port and waits until it answers.
func start() (string, error) {
	cli, err := CLI()
	if err != nil {
		return "", err
	}
	var lastErr error
	for range 3 { // the free port may be taken between choosing and binding it
		port, err := freePort()
		if err != nil {
			return "", err
		}
		cmd, err := startAt(cli, port)
		if err != nil {
			return "", err
		}
		ep := "http://127.0.0.1:" + strconv.Itoa(port)
		if lastErr = waitReady(ep, 15*time.Second); lastErr == nil {
			started = cmd
			return ep, nil
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	return "", lastErr
}

// startAt runs dynalite (the script cli) with node on 127.0.0.1:port, in memory, with tables
// created, updated and deleted at once (no CREATING delay).
func startAt(cli string, port int) (*exec.Cmd, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node is not installed (dynalite runs on Node.js): %w", err)
	}
	cmd := exec.Command(node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	cmd.Stderr = os.Stderr // its stdout says only that it listens
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dynalite: %w", err)
	}
	return cmd, nil
}

// waitReady waits until the endpoint answers ListTables, or timeout.
func waitReady(endpoint string, timeout time.Duration) error {
	client := NewClient(endpoint)
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = client.ListTables(ctx, &dynamodb.ListTablesInput{})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("dynalite at %s did not answer within %v: %w", endpoint, timeout, err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
