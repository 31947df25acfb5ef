package dynamo_test

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// TestCreateTablesIsIdempotent: every table of the layout is created with its indexes,
// and a second run (another replica, a re-run Job) leaves them as they are.
func TestCreateTablesIsIdempotent(t *testing.T) {
	client := dynamotest.Client(t)
	prefix := dynamotest.Prefix()
	t.Cleanup(func() {
		for _, table := range dynamo.AllTables() {
			client.DeleteTable(t.Context(), &dynamodb.DeleteTableInput{TableName: aws.String(prefix + table)})
		}
	})
	for range 2 {
		if err := dynamo.CreateTables(t.Context(), client, prefix, zap.NewNop()); err != nil {
			t.Fatal(err)
		}
	}
	wantIndexes := map[string][]string{
		dynamo.TableDomains:    {dynamo.IndexAll, dynamo.IndexByTenant, dynamo.IndexByStatus, dynamo.IndexByTenantStatus, dynamo.IndexDue},
		dynamo.TableCertstore:  {dynamo.IndexRenew},
		dynamo.TableNotary:     nil,
		dynamo.TableControlAPI: nil,
	}
	for table, want := range wantIndexes {
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(prefix + table)})
		if err != nil {
			t.Fatalf("table %s: %v", table, err)
		}
		var got []string
		for _, g := range out.Table.GlobalSecondaryIndexes {
			got = append(got, aws.ToString(g.IndexName))
			if g.Projection.ProjectionType != "KEYS_ONLY" {
				t.Errorf("%s.%s projects %s, want KEYS_ONLY", table, aws.ToString(g.IndexName), g.Projection.ProjectionType)
			}
		}
		if !sameSet(got, want) {
			t.Errorf("table %s has indexes %v, want %v", table, got, want)
		}
		if err := dynamo.Ping(client, prefix+table)(t.Context()); err != nil {
			t.Errorf("Ping(%s): %v", table, err)
		}
	}
	if err := dynamo.Ping(client, prefix+"missing")(t.Context()); err == nil {
		t.Error("Ping of a missing table succeeded")
	}
}

// TestCreateTablesRefusesATableWithoutItsIndexes: a table made by hand without the
// indexes is reported, not silently used.
func TestCreateTablesRefusesATableWithoutItsIndexes(t *testing.T) {
	client := dynamotest.Client(t)
	prefix := dynamotest.Prefix()
	in, err := dynamo.CreateTableInput(prefix, dynamo.TableCertstore)
	if err != nil {
		t.Fatal(err)
	}
	in.GlobalSecondaryIndexes = nil
	in.AttributeDefinitions = in.AttributeDefinitions[:2]
	if _, err := client.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.DeleteTable(t.Context(), &dynamodb.DeleteTableInput{TableName: in.TableName}) })
	err = dynamo.CreateTables(t.Context(), client, prefix, zap.NewNop(), dynamo.TableCertstore)
	if err == nil || !strings.Contains(err.Error(), dynamo.IndexRenew) {
		t.Fatalf("CreateTables over a table without its index: %v, want an error naming %s", err, dynamo.IndexRenew)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // the flag named by the problem; empty for none
	}{
		{"defaults", nil, ""},
		{"endpoint and region", []string{"-dynamodb-endpoint", "http://127.0.0.1:4567", "-dynamodb-region", "eu-west-1"}, ""},
		{"endpoint not a URL", []string{"-dynamodb-endpoint", "127.0.0.1:4567"}, "-dynamodb-endpoint"},
		{"prefix with a space", []string{"-dynamodb-table-prefix", "my prefix"}, "-dynamodb-table-prefix"},
		{"zero timeout", []string{"-dynamodb-timeout", "0s"}, "-dynamodb-timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o dynamo.Options
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var p config.Problems
			o.Validate(&p)
			err := p.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected problem: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("problems %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestSortableTimesSortAsTimes(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	times := []time.Time{time.Unix(0, 0).Add(-time.Hour), time.Unix(0, 0), base, base.Add(time.Millisecond), base.Add(1000 * time.Hour)}
	for i := 1; i < len(times); i++ {
		a, b := dynamo.SortableMillis(times[i-1]), dynamo.SortableMillis(times[i])
		if a > b || len(a) != len(b) {
			t.Errorf("%v as %q sorts after %v as %q", times[i-1], a, times[i], b)
		}
	}
	if got := dynamo.EpochSeconds(base.Add(time.Millisecond)); got != base.Unix()+1 {
		t.Errorf("EpochSeconds rounds down: %d", got)
	}
}

// TestGatewayHasNoAWSSDK: the gateway talks only to certstore, so neither this package
// nor the AWS SDK may reach its binary.
func TestGatewayHasNoAWSSDK(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "github.com/portico-dev/portico/services/gateway")
	cmd.Dir = filepath.Join(root, "services", "gateway")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps of the gateway: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list found only %d packages in the gateway: %v", len(deps), deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/aws/") || d == "github.com/portico-dev/portico/pkg/dynamo" {
			t.Errorf("the gateway binary imports %s", d)
		}
	}
}

// TestDynaliteSurvivesAClientHangingUp: a client that closes its connection in the
// middle of a request (a cancelled call) does not end the test dynalite, which the
// rest of the run depends on (tools/dynalite/run.js).
func TestDynaliteSurvivesAClientHangingUp(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"+
			"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 1000\r\n\r\n{\"Lim", u.Host)
		time.Sleep(50 * time.Millisecond)
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := dynamotest.Client(t).ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("dynalite after clients hung up mid-request: %v", err)
	}
}
