package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor starts processes, remembers exactly which, and stops them in reverse order.
type supervisor struct {
	logDir string
	mu     sync.Mutex
	procs  []*process
	exited chan *process
}

type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

func newSupervisor(logDir string) *supervisor {
	return &supervisor{logDir: logDir, exited: make(chan *process, 16)}
}

// start runs path with args, logging to <logDir>/<name>.log. The environment is this
// process's minus every PORTICO_* variable plus env: each service gets only the settings
// passed here (services refuse PORTICO_* variables they do not know).
func (s *supervisor) start(name, path string, env []string, args ...string) (*process, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: %w (run `make build` and `make tools`)", name, err)
	}
	logPath := filepath.Join(s.logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(withoutPortico(os.Environ()), env...)
	// Own process group: the terminal's Ctrl-C reaches make run alone, which then stops
	// the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
		select {
		case s.exited <- p:
		default:
		}
	}()
	return p, nil
}

func withoutPortico(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "PORTICO_") {
			out = append(out, kv)
		}
	}
	return out
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stopAll sends SIGTERM to every started process, newest first, and waits up to 5 s for
// each before killing it.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if !p.running() {
			continue
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			fmt.Printf("    stopped %s\n", p.name)
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			fmt.Printf("    killed %s (it ignored SIGTERM for 5 s)\n", p.name)
		}
	}
}

// waitHTTP polls url until it answers 2xx, the process exits, or timeout passes.
func waitHTTP(ctx context.Context, p *process, url string, timeout time.Duration) error {
	return waitFor(ctx, p, timeout, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	})
}

// waitTCP polls until addr accepts connections.
func waitTCP(ctx context.Context, p *process, addr string, timeout time.Duration) error {
	return waitFor(ctx, p, timeout, func(ctx context.Context) error {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

func waitFor(ctx context.Context, p *process, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if p != nil && !p.running() {
			return fmt.Errorf("%s exited while starting; see %s", p.name, p.logPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (%v); see its log", processName(p), timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func processName(p *process) string {
	if p == nil {
		return "service"
	}
	return p.name
}

// adminKey is PORTICO_ADMIN_KEY when set, otherwise a fresh random key; it is written to
// <dir>/admin-key for controlapi.
func adminKey(dir string) (string, error) {
	key := os.Getenv("PORTICO_ADMIN_KEY")
	if key == "" {
		b := make([]byte, 30)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		key = "padm_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	}
	if err := os.WriteFile(filepath.Join(dir, "admin-key"), []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	return key, nil
}
