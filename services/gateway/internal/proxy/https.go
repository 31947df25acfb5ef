package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	stdlog "log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/httpserver"
)

// ServerConfig shapes the HTTPS listener's client side.
type ServerConfig struct {
	// ReadHeaderTimeout bounds the TLS handshake and each request's head.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head (431 beyond it).
	MaxHeaderBytes int
	// FastPath serves HTTP/1.1 connections with the gateway's own keep-alive loop
	// (fastConn); off, every connection goes to net/http as before.
	FastPath bool
	// ErrorLog receives net/http's connection errors.
	ErrorLog *stdlog.Logger
}

// HTTPSServer serves the TLS listener. It runs the handshakes itself; connections that
// negotiated h2 go to a net/http server (HTTP/2), HTTP/1.1 ones to the fast path, which
// hands a connection over to the same net/http server whenever a request is not its to
// serve (WebSocket upgrades, Expect, chunked request bodies, HTTP/1.0, large bodies).
type HTTPSServer struct {
	p        *Proxy
	cfg      ServerConfig
	tls      *tls.Config
	fallback *http.Server
	handoff  *connQueue

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	wg      sync.WaitGroup
	ctx     context.Context // ends when the server is done; lookups on the fast path use it
	cancel  context.CancelFunc
}

// NewHTTPSServer builds the HTTPS listener's server around the proxy's handler.
func (p *Proxy) NewHTTPSServer(tlsConfig *tls.Config, cfg ServerConfig) *HTTPSServer {
	s := &HTTPSServer{
		p:   p,
		cfg: cfg,
		tls: tlsConfig,
		fallback: &http.Server{
			Handler:           p.HTTPS(),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          cfg.ErrorLog,
		},
		conns: map[*fastConn]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Run serves lis until ctx ends, then stops accepting, lets in-flight requests finish
// for up to grace, and closes what is left.
func (s *HTTPSServer) Run(ctx context.Context, lis net.Listener, grace time.Duration) error {
	defer s.cancel()
	if !s.cfg.FastPath {
		s.fallback.TLSConfig = s.tls
		return httpserver.Run(ctx, s.fallback, lis, grace)
	}
	s.handoff = newConnQueue(lis.Addr())
	errc := make(chan error, 2)
	go func() { errc <- s.fallback.Serve(s.handoff) }()
	go func() { errc <- s.accept(lis) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.closing.Store(true)
	lis.Close()
	deadline := time.Now().Add(grace)
	stopped := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		serr := s.fallback.Shutdown(sctx)
		if errors.Is(serr, context.DeadlineExceeded) {
			serr = s.fallback.Close()
		}
		stopped <- serr
	}()
	s.drain(deadline)
	if serr := <-stopped; err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// accept runs until the listener is closed.
func (s *HTTPSServer) accept(lis net.Listener) error {
	var delay time.Duration
	for {
		c, err := lis.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			// net/http's rule: errors that say they are temporary (too many open
			// files) are retried after a pause.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		fc := &fastConn{s: s, c: c}
		if !s.track(fc) {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

func (s *HTTPSServer) track(fc *fastConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[fc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *HTTPSServer) untrack(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.wg.Done()
}

// drain closes idle connections until none is left or the deadline passes, then
// closes the rest. A connection busy with a request finishes it (its response says
// Connection: close) and then closes itself.
func (s *HTTPSServer) drain(deadline time.Time) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for fc := range s.conns {
			if fc.state.CompareAndSwap(connIdle, connClosing) || fc.state.CompareAndSwap(connNew, connClosing) {
				fc.c.Close()
			}
		}
		s.mu.Unlock()
		select {
		case <-done:
			return
		case <-tick.C:
			if time.Now().Before(deadline) {
				continue
			}
		}
		s.mu.Lock()
		for fc := range s.conns {
			fc.c.Close()
		}
		s.mu.Unlock()
		s.cancel()
		select {
		case <-done:
		case <-time.After(time.Second): // goroutines stuck elsewhere end with the process
			s.p.log.Warn("HTTPS connections still running after shutdown")
		}
		return
	}
}

// handOff gives a connection to the net/http server. pending holds bytes already read
// from it (nil for HTTP/2).
func (s *HTTPSServer) handOff(fc *fastConn, tc *tls.Conn, pending []byte) {
	var c net.Conn = tc
	if pending != nil {
		c = &replayConn{Conn: tc, pending: append([]byte(nil), pending...)}
	}
	if !s.handoff.push(c) {
		c.Close()
	}
}

// replayConn is a TLS connection with bytes already read from it in front. net/http
// takes its ConnectionState for Request.TLS.
type replayConn struct {
	*tls.Conn
	pending []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// connQueue is the listener the net/http server accepts handed-over connections from.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// logHandshake records a failed handshake at debug level (every refused name would
// otherwise log a line).
func (s *HTTPSServer) logHandshake(c net.Conn, err error) {
	if ce := s.p.log.Check(zap.DebugLevel, "TLS handshake failed"); ce != nil {
		ce.Write(zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}
