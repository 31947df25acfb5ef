package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/pkg/mtls/mtlstest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/awssm/smfake"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/localkek"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/store/redisstore"
	"github.com/portico-dev/portico/services/certstore/internal/testcert"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRun runs certstore's run with args on a fresh listen address and waits until
// health says SERVING. The returned stop ends it and waits.
func startRun(t *testing.T, creds credentials.TransportCredentials, args ...string) (addr string, stop func()) {
	t.Helper()
	addr = freeAddr(t)
	args = append([]string{"-listen", addr, "-admin-listen", freeAddr(t), "-log-level", "warn", "-redis-addr", redistest.Addr()}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	conn := dial(t, addr, creds)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return addr, stop
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("certstore never became SERVING: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func clientCreds(t *testing.T, files mtls.Files) credentials.TransportCredentials {
	t.Helper()
	cfg, err := mtls.ClientConfig(files, "")
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

func kekFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	if _, err := localkek.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAccessControl calls every method of both services with every identity over
// mTLS: the read service only for gateway, the write service only for notary and
// controlapi, anyone else PERMISSION_DENIED.
func TestAccessControl(t *testing.T) {
	_, prefix := redistest.New(t)
	ca := mtlstest.NewCA(t)
	server := ca.Issue("certstore")
	ids := map[string]mtls.Files{}
	for _, id := range []string{"gateway", "notary", "controlapi", "stranger"} {
		ids[id] = ca.Issue(id)
	}
	addr, _ := startRun(t, clientCreds(t, ids["gateway"]),
		"-redis-key-prefix", prefix, "-kek-file", kekFile(t),
		"-tls-cert", server.Cert, "-tls-key", server.Key, "-tls-ca", server.CA)

	type call func(ctx context.Context, conn *grpc.ClientConn) error
	read := func(f func(certstorev1.CertReadServiceClient, context.Context) error) call {
		return func(ctx context.Context, conn *grpc.ClientConn) error {
			return f(certstorev1.NewCertReadServiceClient(conn), ctx)
		}
	}
	write := func(f func(certstorev1.CertWriteServiceClient, context.Context) error) call {
		return func(ctx context.Context, conn *grpc.ClientConn) error {
			return f(certstorev1.NewCertWriteServiceClient(conn), ctx)
		}
	}
	methods := []struct {
		name    string
		allowed []string
		call    call
	}{
		{"Lookup", []string{"gateway"}, read(func(c certstorev1.CertReadServiceClient, ctx context.Context) error {
			_, err := c.Lookup(ctx, &certstorev1.LookupRequest{Hostname: "a.example.com"})
			return err
		})},
		{"Watch", []string{"gateway"}, read(func(c certstorev1.CertReadServiceClient, ctx context.Context) error {
			s, err := c.Watch(ctx, &certstorev1.WatchRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		})},
		{"PutCertificate", []string{"notary", "controlapi"}, write(func(c certstorev1.CertWriteServiceClient, ctx context.Context) error {
			_, err := c.PutCertificate(ctx, &certstorev1.PutCertificateRequest{})
			return err
		})},
		{"GetCertificate", []string{"notary", "controlapi"}, write(func(c certstorev1.CertWriteServiceClient, ctx context.Context) error {
			_, err := c.GetCertificate(ctx, &certstorev1.GetCertificateRequest{Hostname: "a.example.com"})
			return err
		})},
		{"DeleteCertificate", []string{"notary", "controlapi"}, write(func(c certstorev1.CertWriteServiceClient, ctx context.Context) error {
			_, err := c.DeleteCertificate(ctx, &certstorev1.DeleteCertificateRequest{Hostname: "a.example.com"})
			return err
		})},
		{"SetRoute", []string{"notary", "controlapi"}, write(func(c certstorev1.CertWriteServiceClient, ctx context.Context) error {
			_, err := c.SetRoute(ctx, &certstorev1.SetRouteRequest{})
			return err
		})},
		{"DeleteRoute", []string{"notary", "controlapi"}, write(func(c certstorev1.CertWriteServiceClient, ctx context.Context) error {
			_, err := c.DeleteRoute(ctx, &certstorev1.DeleteRouteRequest{Hostname: "a.example.com"})
			return err
		})},
		{"ListDue", []string{"notary", "controlapi"}, write(func(c certstorev1.CertWriteServiceClient, ctx context.Context) error {
			_, err := c.ListDue(ctx, &certstorev1.ListDueRequest{})
			return err
		})},
	}
	for _, m := range methods {
		for id, files := range ids {
			allowed := false
			for _, a := range m.allowed {
				allowed = allowed || a == id
			}
			t.Run(m.name+" as "+id, func(t *testing.T) {
				conn := dial(t, addr, clientCreds(t, files))
				err := m.call(t.Context(), conn)
				code := status.Code(err)
				if allowed && (code == codes.PermissionDenied || code == codes.Unauthenticated || code == codes.Unavailable) {
					t.Fatalf("allowed identity refused: %v", err)
				}
				if !allowed && code != codes.PermissionDenied {
					t.Fatalf("code %v (%v), want PermissionDenied", code, err)
				}
			})
		}
	}
	t.Run("a certificate from another CA does not get through the handshake", func(t *testing.T) {
		other := mtlstest.NewCA(t).Issue("gateway")
		other.CA = server.CA // trusts the server, but is signed by a CA the server does not know
		conn := dial(t, addr, clientCreds(t, other))
		_, err := certstorev1.NewCertReadServiceClient(conn).Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: "a.example.com"})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("code %v (%v), want the connection refused (Unavailable)", status.Code(err), err)
		}
	})
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	_, err := parseConfig([]string{"-listen", "0.0.0.0:9091", "-kek-file", "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v, want a refusal naming loopback", err)
	}
}

func TestConfigRefusals(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"local without a KEK file", nil, "-kek-file"},
		{"unknown backend", []string{"-secrets-backend", "vault", "-kek-file", "k"}, "-secrets-backend"},
		{"re-wrap with aws", []string{"-secrets-backend", "aws", "-kek-rewrap"}, "-kek-rewrap"},
		{"empty key cache", []string{"-kek-file", "k", "-key-cache-size", "0"}, "-key-cache-size"},
		{"bad extra TLD", []string{"-kek-file", "k", "-hostname-extra-tlds", "a.b"}, "hostname-extra-tlds"},
		{"unknown store", []string{"-kek-file", "k", "-store", "memcached"}, "-store"},
		{"DynamoDB endpoint not a URL", []string{"-kek-file", "k", "-store", "dynamodb", "-dynamodb-endpoint", "localhost:4567"}, "-dynamodb-endpoint"},
		{"change log polled too slowly", []string{"-kek-file", "k", "-watch-poll-interval", "5s"}, "-watch-poll-interval"},
		{"change log kept too briefly", []string{"-kek-file", "k", "-watch-log-retention", "30m"}, "-watch-log-retention"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func lookupMatches(t *testing.T, read certstorev1.CertReadServiceClient, name string, want testcert.Issued) {
	t.Helper()
	resp, err := read.Lookup(t.Context(), &certstorev1.LookupRequest{Hostname: name})
	if err != nil {
		t.Fatalf("Lookup(%s): %v", name, err)
	}
	if !bytes.Equal(resp.GetPrivateKey(), want.Key) || !bytes.Equal(resp.GetCertificateChain()[0], want.Chain[0]) {
		t.Fatalf("Lookup(%s) returned another certificate or key", name)
	}
	key, err := x509.ParsePKCS8PrivateKey(resp.GetPrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	if !want.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(crypto.Signer).Public()) {
		t.Fatalf("Lookup(%s): key does not match the leaf", name)
	}
}

// TestKEKRotationEndToEnd follows docs/certstore.md: keys stored under KEK 1; rotate;
// restart with -kek-rewrap, which moves every key to KEK 2; retire KEK 1; every key
// still opens. The records in Redis show which KEK wraps each key at each step.
func TestKEKRotationEndToEnd(t *testing.T) {
	rdb, prefix := redistest.New(t)
	records := redisstore.New(rdb, prefix)
	kek := kekFile(t)
	plain := insecure.NewCredentials()
	common := []string{"-redis-key-prefix", prefix, "-kek-file", kek}
	ca := testcert.NewCA(t)
	certs := map[string]testcert.Issued{}
	for _, name := range []string{"a.example.com", "b.example.com"} {
		certs[name] = ca.Issue(t, testcert.Leaf{DNSNames: []string{name}})
	}
	wrappedBy := func(name string) string {
		t.Helper()
		c, err := records.GetCertificate(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		id, err := localkek.KEKID(c.KeyRef)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	addr, stop := startRun(t, plain, common...)
	conn := dial(t, addr, plain)
	write, read := certstorev1.NewCertWriteServiceClient(conn), certstorev1.NewCertReadServiceClient(conn)
	for name, c := range certs {
		if _, err := write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{Hostname: name, CertificateChain: c.Chain, PrivateKey: c.Key}); err != nil {
			t.Fatal(err)
		}
		if _, err := write.SetRoute(t.Context(), &certstorev1.SetRouteRequest{Route: &certstorev1.Route{Hostname: name, TenantId: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	ring, _ := localkek.LoadKeyring(kek)
	first := ring.Current()
	if got := wrappedBy("a.example.com"); got != first {
		t.Fatalf("a.example.com wrapped by %q, want %q", got, first)
	}
	stop()

	var out bytes.Buffer
	if err := kekCommand([]string{"rotate", "-kek-file", kek}, &out); err != nil {
		t.Fatal(err)
	}
	ring, _ = localkek.LoadKeyring(kek)
	second := ring.Current()
	if second == first || !strings.Contains(out.String(), second) {
		t.Fatalf("rotate printed %q; new current %q, old %q", out.String(), second, first)
	}

	addr, stop = startRun(t, plain, append(common, "-kek-rewrap")...)
	conn = dial(t, addr, plain)
	read = certstorev1.NewCertReadServiceClient(conn)
	lookupMatches(t, read, "a.example.com", certs["a.example.com"]) // still opens during the pass
	deadline := time.Now().Add(10 * time.Second)
	for wrappedBy("a.example.com") != second || wrappedBy("b.example.com") != second {
		if time.Now().After(deadline) {
			t.Fatalf("the re-wrap pass did not move the keys to %q", second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	// Retire the first KEK.
	text, _ := os.ReadFile(kek)
	var kept []string
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.HasPrefix(line, first+":") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(kek, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ = startRun(t, plain, common...)
	read = certstorev1.NewCertReadServiceClient(dial(t, addr, plain))
	for name, c := range certs {
		lookupMatches(t, read, name, c)
	}
}

func TestKEKCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "kek")
	tests := []struct {
		name    string
		args    []string
		wantOut string
		wantErr bool
	}{
		{"create", []string{"create", "-kek-file", path}, "created", false},
		{"create again leaves it", []string{"create", "-kek-file", path}, "left as it is", false},
		{"rotate", []string{"rotate", "-kek-file", path}, "as the current one", false},
		{"no file", []string{"create"}, "", true},
		{"unknown subcommand", []string{"burn", "-kek-file", path}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := kekCommand(tc.args, &out)
			if (err != nil) != tc.wantErr || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("out %q err %v; want %q, error %v", out.String(), err, tc.wantOut, tc.wantErr)
			}
		})
	}
	text, _ := os.ReadFile(path)
	if _, err := localkek.ParseKeyring(text); err != nil || strings.Count(string(text), ":") != 2 {
		t.Fatalf("keyring after create and rotate: %v\n%s; want two KEKs", err, text)
	}
}

// TestAWSBackendThroughRun starts certstore with -secrets-backend aws against the fake
// Secrets Manager (-aws-endpoint): keys go to secrets, a renewal deletes the old secret,
// and Lookup reads the key back.
func TestAWSBackendThroughRun(t *testing.T) {
	fake := smfake.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	_, prefix := redistest.New(t)
	plain := insecure.NewCredentials()
	addr, _ := startRun(t, plain, "-redis-key-prefix", prefix, "-secrets-backend", "aws",
		"-aws-endpoint", fake.URL, "-aws-secret-prefix", "acme/keys/")
	conn := dial(t, addr, plain)
	write, read := certstorev1.NewCertWriteServiceClient(conn), certstorev1.NewCertReadServiceClient(conn)
	ca := testcert.NewCA(t)
	name := "shop.example.com"
	if _, err := write.SetRoute(t.Context(), &certstorev1.SetRouteRequest{Route: &certstorev1.Route{Hostname: name, TenantId: "t"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c := ca.Issue(t, testcert.Leaf{DNSNames: []string{name}})
		if _, err := write.PutCertificate(t.Context(), &certstorev1.PutCertificateRequest{Hostname: name, CertificateChain: c.Chain, PrivateKey: c.Key}); err != nil {
			t.Fatal(err)
		}
		lookupMatches(t, read, name, c)
		names := fake.Names()
		if len(names) != 1 || !strings.HasPrefix(names[0], "acme/keys/"+name+"/") {
			t.Fatalf("secrets held %v, want exactly the current key's, under the prefix", names)
		}
	}
	if fake.Calls("DeleteSecret") != 1 {
		t.Fatalf("%d secrets deleted, want 1 (the replaced key)", fake.Calls("DeleteSecret"))
	}
}

// TestShutdownEndsWatchStreams: on SIGTERM (the context of run ending) an open Watch
// stream ends with UNAVAILABLE, so the gateway reconnects elsewhere, and run returns
// well within the 5 seconds a rollout allows.
func TestShutdownEndsWatchStreams(t *testing.T) {
	_, prefix := redistest.New(t)
	plain := insecure.NewCredentials()
	addr, stop := startRun(t, plain, "-redis-key-prefix", prefix, "-kek-file", kekFile(t))
	stream, err := certstorev1.NewCertReadServiceClient(dial(t, addr, plain)).Watch(t.Context(), &certstorev1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetKind() != certstorev1.ChangeKind_CHANGE_KIND_RESET {
		t.Fatalf("first message %v, %v; want RESET", first, err)
	}
	start := time.Now()
	stop()
	took := time.Since(start)
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream after shutdown: %v, want UNAVAILABLE", err)
	}
	if took > 4*time.Second {
		t.Fatalf("run took %v to stop with a watcher connected", took)
	}
	t.Logf("stopped in %v with a watcher connected", took.Round(time.Millisecond))
}

// TestCheckKeyringNamesMissingKEKs: keys wrapped by a KEK the keyring lacks are
// reported at start, naming the KEK and a certificate that needs it.
func TestCheckKeyringNamesMissingKEKs(t *testing.T) {
	rdb, prefix := redistest.New(t)
	records := redisstore.New(rdb, prefix)
	parse := func(text string) *localkek.Backend {
		ring, err := localkek.ParseKeyring([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return localkek.New(ring)
	}
	oldLine, _ := localkek.NewKEKLine(time.Now())
	newLine, _ := localkek.NewKEKLine(time.Now())
	old, current := parse(oldLine), parse(newLine)
	for name, b := range map[string]*localkek.Backend{"old.example.com": old, "new.example.com": current} {
		ref, err := b.Seal(t.Context(), name, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := records.PutCertificate(t.Context(), store.Certificate{Name: name, Chain: [][]byte{{4, 0}}, KeyRef: ref, RenewTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zapcore.InfoLevel)
	checkKeyring(t.Context(), records, current, zap.New(core))
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	oldID, _, _ := strings.Cut(oldLine, ":")
	if len(errs) != 1 || errs[0].ContextMap()["kek_id"] != oldID || errs[0].ContextMap()["hostname"] != "old.example.com" {
		t.Fatalf("logged %v, want one error naming KEK %s and old.example.com", errs, oldID)
	}
}

// TestWatchAnnouncesItselfAtOnce: a watcher resuming from the current revision gets
// nothing until the next change, but the stream's headers arrive at once, so it can tell
// that it is connected (the gateway's readiness).
func TestWatchAnnouncesItselfAtOnce(t *testing.T) {
	_, prefix := redistest.New(t)
	plain := insecure.NewCredentials()
	addr, _ := startRun(t, plain, "-redis-key-prefix", prefix, "-kek-file", kekFile(t))
	client := certstorev1.NewCertReadServiceClient(dial(t, addr, plain))
	first, err := client.Watch(t.Context(), &certstorev1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	reset, err := first.Recv()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	resumed, err := client.Watch(ctx, &certstorev1.WatchRequest{AfterRevision: reset.GetRevision()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resumed.Header(); err != nil || ctx.Err() != nil {
		t.Fatalf("headers of a resumed, quiet stream came only with its end (%v, %v)", err, ctx.Err())
	}
}
