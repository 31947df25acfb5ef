// Package grpcclient dials Portico's internal gRPC services: mTLS with the caller's own
// identity certificate, or plaintext to a loopback address for local runs, with
// keepalives and round-robin over every address a DNS name resolves to (a headless
// Kubernetes Service), so that several replicas share the load.
package grpcclient

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/mtls"
)

// Target is how to reach one service.
type Target struct {
	// Addr is host:port, or a gRPC target such as dns:///certstore:9091.
	Addr string
	// TLS is the client's own certificate and the CA to verify the server with.
	TLS mtls.Files
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

// RegisterFlags adds -<name>-addr, -<name>-tls-{cert,key,ca} and -<name>-server-name.
func (t *Target) RegisterFlags(fs *flag.FlagSet, name, defaultAddr string) {
	fs.StringVar(&t.Addr, name+"-addr", defaultAddr, name+" gRPC address (host:port or dns:///host:port)")
	t.TLS.RegisterFlags(fs, name+"-tls", "the "+name+" client's")
	fs.StringVar(&t.ServerName, name+"-server-name", "", "name expected in "+name+"'s server certificate (default: the host dialed)")
}

// Validate records bad settings under the flag prefix name.
func (t *Target) Validate(p *config.Problems, name string) {
	p.CheckRequired(name+"-addr", t.Addr)
	if err := t.TLS.Check(); err != nil {
		p.Addf(name+"-tls-cert", "%v", err)
	}
	if !t.TLS.Enabled() && t.Addr != "" && !config.IsLoopback(hostPort(t.Addr)) {
		p.Addf(name+"-addr", "%q is not a loopback address, and plaintext is allowed only on loopback: set -%s-tls-cert, -key and -ca", t.Addr, name)
	}
}

// Dial opens a lazy client connection (no I/O until the first call).
func Dial(t Target, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if t.TLS.Enabled() {
		cfg, err := mtls.ClientConfig(t.TLS, t.ServerName)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	} else if !config.IsLoopback(hostPort(t.Addr)) {
		return nil, fmt.Errorf("plaintext gRPC to %s refused: not a loopback address", t.Addr)
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}, opts...)
	conn, err := grpc.NewClient(t.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", t.Addr, err)
	}
	return conn, nil
}

// hostPort strips a gRPC target scheme ("dns:///", "passthrough:///").
func hostPort(target string) string {
	if i := strings.Index(target, ":///"); i >= 0 {
		return target[i+4:]
	}
	return target
}
