package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/testcert"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// TestDynamoDBStoreThroughRun: with -store dynamodb, certstore creates its table, stores
// and serves certificates, and streams changes to a watcher within a second, with no
// Redis at all (-redis-addr points at nothing).
func TestDynamoDBStoreThroughRun(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	prefix := dynamotest.Prefix()
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Cleanup(func() {
		dynamotest.NewClient(endpoint).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(prefix + dynamo.TableCertstore)})
	})
	plain := insecure.NewCredentials()
	addr, _ := startRun(t, plain, "-redis-addr", "127.0.0.1:1", "-kek-file", kekFile(t),
		"-store", "dynamodb", "-dynamodb-endpoint", endpoint, "-dynamodb-region", "us-east-1",
		"-dynamodb-table-prefix", prefix, "-dynamodb-create-tables")
	conn := dial(t, addr, plain)
	write, read := certstorev1.NewCertWriteServiceClient(conn), certstorev1.NewCertReadServiceClient(conn)

	stream, err := read.Watch(t.Context(), &certstorev1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetKind() != certstorev1.ChangeKind_CHANGE_KIND_RESET {
		t.Fatalf("first message %v, %v; want RESET", first, err)
	}
	name := "shop.example.com"
	if _, err := write.SetRoute(t.Context(), &certstorev1.SetRouteRequest{Route: &certstorev1.Route{Hostname: name, TenantId: "t"}}); err != nil {
		t.Fatal(err)
	}
	c := testcert.NewCA(t).Issue(t, testcert.Leaf{DNSNames: []string{name}})
	start := time.Now()
	if _, err := write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{Hostname: name, CertificateChain: c.Chain, PrivateKey: c.Key}); err != nil {
		t.Fatal(err)
	}
	lookupMatches(t, read, name, c)
	for {
		ch, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ch.GetKind() == certstorev1.ChangeKind_CHANGE_KIND_CERTIFICATE_PUT && ch.GetHostname() == name {
			if took := time.Since(start); took > time.Second {
				t.Fatalf("the change reached the watcher after %v, want within a second", took)
			} else {
				t.Logf("the change reached the watcher after %v", took.Round(time.Millisecond))
			}
			break
		}
	}
}
