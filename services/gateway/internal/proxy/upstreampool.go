package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// upstreamPool keeps idle keep-alive connections to upstreams for the fast path. Unlike
// net/http's Transport it starts no goroutine per connection: a connection is taken by
// the goroutine serving a client request, used for one request and response, and put
// back. A connection the upstream closed while it sat idle is noticed when it is taken
// (a non-blocking peek) or, for requests that may be sent again, when its response does
// not come (see fastConn.roundTrip).
type upstreamPool struct {
	dialer   net.Dialer
	maxIdle  int           // per upstream
	idleTime time.Duration // idle connections older than this are closed

	mu    sync.Mutex
	idle  map[string][]idleConn // by address; most recently used last
	stop  chan struct{}
	close sync.Once
}

type idleConn struct {
	c     *net.TCPConn
	since time.Time
}

func newUpstreamPool(dialTimeout, idleTime time.Duration, maxIdle int) *upstreamPool {
	p := &upstreamPool{
		dialer:   net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:  maxIdle,
		idleTime: idleTime,
		idle:     map[string][]idleConn{},
		stop:     make(chan struct{}),
	}
	go p.reap()
	return p
}

// get returns an idle connection to addr (reused=true), or dials a new one. check asks
// for a liveness peek of a reused connection, for requests that cannot be sent twice.
func (p *upstreamPool) get(ctx context.Context, addr string, check bool) (c *net.TCPConn, reused bool, err error) {
	now := time.Now()
	for {
		p.mu.Lock()
		list := p.idle[addr]
		if len(list) == 0 {
			p.mu.Unlock()
			break
		}
		ic := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		p.mu.Unlock()
		if now.Sub(ic.since) > p.idleTime || check && !alive(ic.c) {
			ic.c.Close()
			continue
		}
		return ic.c, true, nil
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return nil, false, errors.New("upstream connection is not TCP")
	}
	return tc, false, nil
}

// put returns a connection after a complete response; beyond maxIdle it is closed.
func (p *upstreamPool) put(addr string, c *net.TCPConn) {
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		c.Close()
		return
	default:
	}
	if len(p.idle[addr]) >= p.maxIdle {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], idleConn{c: c, since: time.Now()})
	p.mu.Unlock()
}

// reap closes connections idle too long, so upstreams' sockets are not held open.
func (p *upstreamPool) reap() {
	every := p.idleTime / 2
	if every > 10*time.Second {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			for addr, list := range p.idle {
				kept := list[:0]
				for _, ic := range list {
					if now.Sub(ic.since) > p.idleTime {
						ic.c.Close()
					} else {
						kept = append(kept, ic)
					}
				}
				if len(kept) == 0 {
					delete(p.idle, addr)
				} else {
					p.idle[addr] = kept
				}
			}
			p.mu.Unlock()
		}
	}
}

// closeAll closes every idle connection and stops the reaper; later puts close theirs.
func (p *upstreamPool) closeAll() {
	p.close.Do(func() { close(p.stop) })
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, list := range p.idle {
		for _, ic := range list {
			ic.c.Close()
		}
		delete(p.idle, addr)
	}
}

// alive peeks at an idle connection without blocking: an idle upstream connection has
// nothing to read, so EOF (closed by the upstream) or stray bytes both mean unusable.
func alive(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	var b [1]byte
	cerr := rc.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(err, syscall.EAGAIN)
	})
	return cerr == nil && ok
}
