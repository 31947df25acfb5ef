// Package e2e tests Portico through its real processes.
package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-dev/portico/pkg/proctest"
	"github.com/portico-dev/portico/pkg/redisconn/redistest"
)

// TestServicesStartServeAndStop starts the four binaries wired to each other, waits until
// each reports SERVING on gRPC health, then sends each SIGTERM and requires a clean exit
// within 5 seconds.
func TestServicesStartServeAndStop(t *testing.T) {
	_, prefix := redistest.New(t)
	redis := []string{"-redis-addr", redistest.Addr(), "-redis-key-prefix", prefix}
	certstoreAddr := proctest.FreeAddr(t)

	type service struct {
		name   string
		health string // where health is asked
		args   []string
	}
	notaryAddr := proctest.FreeAddr(t)
	gatewayHealth := proctest.FreeAddr(t)
	services := []service{
		{"certstore", certstoreAddr, append([]string{"-listen", certstoreAddr, "-admin-listen", proctest.FreeAddr(t),
			"-kek-file", filepath.Join(t.TempDir(), "kek"), "-kek-create"}, redis...)},
		{"notary", notaryAddr, append([]string{"-listen", notaryAddr, "-admin-listen", proctest.FreeAddr(t),
			"-http-listen", proctest.FreeAddr(t), "-certstore-addr", certstoreAddr, "-edge-cname", "edge.portico.example.net"}, redis...)},
		{"controlapi", "", nil},
		{"gateway", gatewayHealth, []string{"-health-listen", gatewayHealth, "-admin-listen", proctest.FreeAddr(t),
			"-http-listen", proctest.FreeAddr(t), "-https-listen", proctest.FreeAddr(t), "-certstore-addr", certstoreAddr}},
	}
	controlAddr := proctest.FreeAddr(t)
	services[2].health = controlAddr
	services[2].args = append([]string{"-listen", controlAddr, "-http-listen", proctest.FreeAddr(t), "-admin-listen", proctest.FreeAddr(t),
		"-notary-addr", notaryAddr, "-certstore-addr", certstoreAddr, "-edge-cname", "edge.portico.example.net"}, redis...)

	running := make([]*proctest.Process, len(services))
	for i, s := range services {
		running[i] = proctest.Start(t, s.name, proctest.Build(t, s.name), nil, s.args...)
	}
	for i, s := range services {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := proctest.WaitServing(ctx, running[i], s.health)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Stop the gateway first and certstore last, as a rollout would.
	for i := len(services) - 1; i >= 0; i-- {
		took, err := running[i].Stop(5 * time.Second)
		if err != nil {
			t.Errorf("%s: %v", services[i].name, err)
			continue
		}
		t.Logf("%s exited cleanly %v after SIGTERM", services[i].name, took.Round(time.Millisecond))
	}
}
