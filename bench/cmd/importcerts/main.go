// Command importcerts loads the benchmark's certificates into certstore: for every name in
// <certs>/names.txt it reads <name>.crt (PEM chain, leaf first) and <name>.key (PKCS#8
// PEM), stores them with CertWriteService.PutCertificate, and gives the name a route to
// the gateway's default upstream with SetRoute. It first waits for certstore's health to
// say SERVING. Used by bench/peer.sh; see bench/README.md.
package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
)

func main() {
	addr := flag.String("certstore", "127.0.0.1:9091", "certstore gRPC address (plaintext, loopback)")
	dir := flag.String("certs", "", "folder written by the harness's gencerts: names.txt, <name>.crt, <name>.key")
	tenant := flag.String("tenant", "bench", "tenant of the routes")
	workers := flag.Int("concurrency", 16, "writes in flight")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for certstore to be SERVING")
	flag.Parse()
	if err := run(*addr, *dir, *tenant, *workers, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "importcerts:", err)
		os.Exit(1)
	}
}

func run(addr, dir, tenant string, workers int, wait time.Duration) error {
	if dir == "" {
		return errors.New("-certs is required")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "names.txt"))
	if err != nil {
		return err
	}
	names := strings.Fields(string(raw))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	err = waitServing(ctx, healthpb.NewHealthClient(conn))
	cancel()
	if err != nil {
		return err
	}

	w := certstorev1.NewCertWriteServiceClient(conn)
	start := time.Now()
	var done atomic.Int64
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(workers)
	for _, name := range names {
		g.Go(func() error {
			chain, key, err := readPair(dir, name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if _, err := w.PutCertificate(ctx, &certstorev1.PutCertificateRequest{
				Hostname: name, CertificateChain: chain, PrivateKey: key, FencingToken: 1,
			}); err != nil {
				return fmt.Errorf("put certificate %s: %w", name, err)
			}
			if _, err := w.SetRoute(ctx, &certstorev1.SetRouteRequest{Route: &certstorev1.Route{Hostname: name, TenantId: tenant}}); err != nil {
				return fmt.Errorf("set route %s: %w", name, err)
			}
			done.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("importcerts: %d certificates and routes in %v\n", done.Load(), time.Since(start).Round(time.Millisecond))
	return nil
}

// readPair reads a name's PEM chain and PKCS#8 key and returns them as DER.
func readPair(dir, name string) (chain [][]byte, key []byte, err error) {
	crt, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, nil, err
	}
	for rest := crt; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("%s.crt holds no certificate", name)
	}
	k, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, nil, err
	}
	b, _ := pem.Decode(k)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, nil, fmt.Errorf("%s.key holds no PKCS#8 PRIVATE KEY block", name)
	}
	return chain, b.Bytes, nil
}

func waitServing(ctx context.Context, h healthpb.HealthClient) error {
	for {
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("certstore is not SERVING (last: %v %v)", resp.GetStatus(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
