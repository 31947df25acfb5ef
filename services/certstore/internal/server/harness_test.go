package server_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portico-dev/portico/pkg/dynamo"
	"github.com/portico-dev/portico/pkg/dynamo/dynamotest"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/certstore/internal/secrets"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/localkek"
	"github.com/portico-dev/portico/services/certstore/internal/server"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/dynamostore"
	"github.com/portico-dev/portico/services/certstore/internal/store/redisstore"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
	"github.com/portico-dev/portico/services/certstore/internal/watch/dynamolog"
)

// replica is one certstore serving gRPC on loopback against the test's Redis prefix.
type replica struct {
	addr  string
	read  certstorev1.CertReadServiceClient
	write certstorev1.CertWriteServiceClient
	keys  *secrets.Cache
	store store.Store
}

// cluster is the shared state several replicas run on: one Redis prefix (or, on
// DynamoDB, one table), one KEK file.
type cluster struct {
	t       testing.TB
	prefix  string
	kekFile string
	log     *zap.Logger
	// dynamo is the certstore table when the cluster runs on DynamoDB (dynalite).
	dynamo *dynamo.Table
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	_, prefix := redistest.New(t)
	kek := filepath.Join(t.TempDir(), "kek")
	if _, err := localkek.CreateFile(kek, time.Now()); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, prefix: prefix, kekFile: kek, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
}

// newDynamoCluster is newCluster on DynamoDB (a dynalite table of its own).
func newDynamoCluster(t testing.TB) *cluster {
	t.Helper()
	c := newCluster(t)
	table := dynamotest.Table(t, dynamo.TableCertstore)
	c.dynamo = &table
	return c
}

func TestMain(m *testing.M) { dynamotest.Main(m) }

// start runs a replica; backend nil means the local backend on the cluster's KEK file.
func (c *cluster) start(backend secrets.Backend) *replica {
	t := c.t
	t.Helper()
	rdb, _ := redistest.New(t) // own client; keys live under the cluster's prefix
	if backend == nil {
		ring, err := localkek.LoadKeyring(c.kekFile)
		if err != nil {
			t.Fatal(err)
		}
		backend = localkek.New(ring)
	}
	keys, err := secrets.NewCache(backend, c.log, secrets.CacheOptions{Size: 1000, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var records store.Store = redisstore.New(rdb, c.prefix)
	var changes watch.Log = watch.NewRedisLog(rdb, c.prefix, 10000)
	if c.dynamo != nil {
		records = dynamostore.New(*c.dynamo)
		changes = dynamolog.New(*c.dynamo, dynamolog.Options{})
	}
	hub := watch.NewHub(changes, c.log, 64)
	read, write := server.New(server.Deps{Store: records, Keys: keys, Changes: changes, Feed: hub, Log: c.log, ExtraTLDs: []string{"test"}})
	srv, err := grpcserver.New(c.log, grpcserver.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService(&certstorev1.CertReadService_ServiceDesc, read)
	srv.RegisterService(&certstorev1.CertWriteService_ServiceDesc, write)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { srv.Run(ctx); done <- struct{}{} }()
	go func() { hub.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &replica{
		addr:  srv.Addr().String(),
		read:  certstorev1.NewCertReadServiceClient(conn),
		write: certstorev1.NewCertWriteServiceClient(conn),
		keys:  keys,
		store: records,
	}
}
