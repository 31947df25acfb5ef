// Package proctest builds Portico's binaries and runs them as real processes for tests:
// free loopback ports, a log file per process (printed when the test fails), a stop that
// sends SIGTERM and reports how long the process took to exit, and a wait for gRPC health.
// The end-to-end tests, the gateway's integration tests, the notary's and the chart's all
// use it, so a binary is built and started the same way everywhere.
package proctest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Build compiles services/<name> once per test binary and returns the executable's path.
func Build(t testing.TB, name string) string {
	t.Helper()
	return BuildPackage(t, "services/"+name, ".", name)
}

// BuildPackage compiles the package pkg of the module in dir (relative to the repository
// root) once per test binary, as name, and returns the executable's path.
func BuildPackage(t testing.TB, dir, pkg, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := dir + " " + pkg
	if p, ok := built[key]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "portico-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join(RepoRoot(), dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s in %s: %v\n%s", pkg, dir, err, b)
	}
	built[key] = out
	return out
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a running binary.
type Process struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start runs path with args. The environment is the test's minus every PORTICO_*
// variable plus env, so settings come only from what the test passes. The process is
// killed at cleanup if still running, and its log is printed if the test failed.
func Start(t testing.TB, name, path string, env []string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(cleanEnv(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- log of %s ---\n%s", name, tail(b, 200))
		}
	})
	return p
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTICO_") {
			env = append(env, kv)
		}
	}
	return env
}

func tail(b []byte, lines int) []byte {
	parts := bytes.Split(b, []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return bytes.Join(parts, []byte("\n"))
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns the process's output so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Signal sends sig.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits up to limit; it returns the exit error (nil for status 0)
// and how long the exit took, or an error if the process outlived limit (then it is
// killed).
func (p *Process) Stop(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("%s still running %v after SIGTERM", p.Name, limit)
	}
}

// Kill sends SIGKILL and waits.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// WaitServing polls a plaintext grpc.health.v1 endpoint until it reports SERVING.
func WaitServing(ctx context.Context, p *Process, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	var last string
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = resp.GetStatus().String()
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before serving: %v", p.Name, p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never reported SERVING at %s (last: %s)", p.Name, addr, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Main runs a test binary's tests and then removes the binaries Build compiled. Call it
// from TestMain in every package that builds binaries:
//
//	func TestMain(m *testing.M) { proctest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	buildMu.Lock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	buildMu.Unlock()
	os.Exit(code)
}
