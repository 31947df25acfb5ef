package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/errkind"
	"github.com/portico-dev/portico/services/gateway/internal/httpwire"
	"github.com/portico-dev/portico/services/gateway/internal/proxyprotocol"
)

// The fast path: one goroutine per HTTP/1.1 client connection reads a request, writes
// it to a pooled upstream connection, reads the response and writes it back, all on
// that goroutine (net/http's server and Transport use four goroutines and channel
// hand-offs per request, and a background read). The request head is parsed in place
// (internal/httpwire) and the outbound request and the response head are built in one
// pooled buffer each, so a small response reaches the client in one TLS write. See
// docs/performance.md for the profile behind it.

// Connection states, for shutdown.
const (
	connNew     int32 = iota // accepted, TLS handshake or first request head in progress
	connActive               // serving a request
	connIdle                 // waiting for the next request
	connClosing              // closed by shutdown
)

// maxFastBody is the largest request body the fast path reads into memory; larger
// bodies (and chunked ones) stream through net/http.
const maxFastBody = 64 << 10

// maxResponseHead bounds an upstream response head (net/http's Transport allows 1 MB).
const maxResponseHead = 1 << 20

// fastConn is one client connection on the fast path.
type fastConn struct {
	s     *HTTPSServer
	c     net.Conn
	tc    *tls.Conn
	state atomic.Int32
	sni   string

	in   []byte // bytes read from the client, not consumed yet
	req  httpwire.Request
	resp httpwire.Response

	// Per connection: who the client is, as the forwarded headers say it.
	peerHost string
	trusted  bool

	// Watching for the client leaving while the upstream takes its time (see watch).
	watchTimer *time.Timer
	watchDone  chan struct{}
	upConn     atomic.Pointer[net.TCPConn] // the upstream connection waited on
	clientGone atomic.Bool
	peeked     []byte // a byte the watch read from the client (the next request's)
}

// watchAfter is how long an upstream may take before the fast path starts watching the
// client connection (a read in the background, as net/http does for every request), so
// that a client that left cancels its upstream request.
const watchAfter = 200 * time.Millisecond

// buffers for outbound requests, response heads and upstream reads.
var fastBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBuffer() *[]byte { return fastBuffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // grown for an unusual message: let it go
	}
	*b = (*b)[:0]
	fastBuffers.Put(b)
}

func (fc *fastConn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			fc.c.Close()
		}
		fc.s.untrack(fc)
	}()
	s := fc.s
	if d := s.cfg.ReadHeaderTimeout; d > 0 {
		fc.c.SetDeadline(time.Now().Add(d))
	}
	fc.tc = tls.Server(fc.c, s.tls)
	if err := fc.tc.HandshakeContext(s.ctx); err != nil {
		s.logHandshake(fc.c, err)
		return
	}
	fc.c.SetWriteDeadline(time.Time{})
	st := fc.tc.ConnectionState()
	if st.NegotiatedProtocol == "h2" {
		fc.c.SetReadDeadline(time.Time{})
		handedOff = true
		s.handOff(fc, fc.tc, nil)
		return
	}
	fc.sni = st.ServerName
	fc.identifyPeer()
	fc.in = make([]byte, 0, 4<<10)
	for first := true; ; first = false {
		if !first {
			if !fc.state.CompareAndSwap(connActive, connIdle) || s.closing.Load() {
				return
			}
		}
		v, ok := fc.readHead(first)
		if !ok {
			return
		}
		switch v {
		case httpwire.Unusual:
			fc.c.SetReadDeadline(time.Time{})
			handedOff = true
			s.handOff(fc, fc.tc, fc.in)
			return
		case httpwire.Bad:
			fc.writeError(400, "400 Bad Request", true)
			return
		case httpwire.TooLarge:
			fc.writeError(431, "431 Request Header Fields Too Large", true)
			return
		}
		if fc.req.ContentLength > maxFastBody {
			fc.c.SetReadDeadline(time.Time{})
			handedOff = true
			s.handOff(fc, fc.tc, fc.in)
			return
		}
		end := fc.req.HeadLen + int(fc.req.ContentLength)
		if !fc.readBody(end) {
			return
		}
		keep := fc.serveRequest(fc.in[:end])
		fc.in = fc.in[:copy(fc.in, fc.in[end:])] // pipelined bytes move to the front
		if !keep || fc.req.Close {
			return
		}
	}
}

// identifyPeer works out, once per connection, the address the forwarded headers name.
func (fc *fastConn) identifyPeer() {
	remote := fc.c.RemoteAddr().String()
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	fc.peerHost = host
	peer, err := netip.ParseAddr(host)
	fc.trusted = err == nil && proxyprotocol.Contains(fc.s.p.cfg.TrustedProxies, peer.Unmap())
}

// readHead reads until fc.in holds a complete request head (or a verdict on it). The
// wait for the first byte of a keep-alive request is bounded by the idle timeout, the
// rest of the head by the header timeout. ok=false: the connection is done.
func (fc *fastConn) readHead(first bool) (httpwire.Verdict, bool) {
	cfg := &fc.s.cfg
	if len(fc.in) == 0 && !first {
		if cfg.IdleTimeout > 0 {
			fc.c.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		if !fc.fill(cfg.MaxHeaderBytes) {
			return 0, false
		}
	}
	if !first {
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return 0, false // shutdown closed it
		}
		if cfg.ReadHeaderTimeout > 0 {
			fc.c.SetReadDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
		}
	} else {
		fc.state.CompareAndSwap(connNew, connActive)
		if cfg.ReadHeaderTimeout > 0 {
			fc.c.SetReadDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
		}
	}
	for {
		v := httpwire.ParseRequest(fc.in, cfg.MaxHeaderBytes, &fc.req)
		if v != httpwire.Incomplete {
			return v, true
		}
		if !fc.fill(cfg.MaxHeaderBytes) {
			return 0, false
		}
	}
}

// fill reads once more from the client into fc.in, growing it up to limit+1 bytes
// beyond the unconsumed ones. false: the client is gone or too slow.
func (fc *fastConn) fill(limit int) bool {
	if len(fc.in) == cap(fc.in) {
		if len(fc.in) > limit+maxFastBody {
			return false
		}
		grown := make([]byte, len(fc.in), 2*cap(fc.in))
		copy(grown, fc.in)
		fc.in = grown
	}
	n, err := fc.tc.Read(fc.in[len(fc.in):cap(fc.in)])
	fc.in = fc.in[:len(fc.in)+n]
	return n > 0 || err == nil
}

// readBody reads until fc.in holds end bytes (the head and a Content-Length body).
func (fc *fastConn) readBody(end int) bool {
	if len(fc.in) >= end {
		return true
	}
	if d := fc.s.cfg.IdleTimeout; d > 0 {
		fc.c.SetReadDeadline(time.Now().Add(d))
	}
	for len(fc.in) < end {
		if cap(fc.in) < end {
			grown := make([]byte, len(fc.in), end)
			copy(grown, fc.in)
			fc.in = grown
		}
		n, err := fc.tc.Read(fc.in[len(fc.in):end])
		fc.in = fc.in[:len(fc.in)+n]
		if err != nil && len(fc.in) < end {
			return false
		}
	}
	return true
}

// serveRequest answers one complete request (msg: its head and body); false means the
// client connection must be closed after it.
func (fc *fastConn) serveRequest(msg []byte) bool {
	p := fc.s.p
	req := &fc.req
	host := hostWithoutPortBytes(req.Host)
	if string(host) != fc.sni && !p.sameName(string(host), fc.sni) {
		p.m.requests[listenerHTTPS][outcomeMisdirected].Inc()
		return fc.writeError(421, "misdirected request: the Host does not match the TLS server name", false)
	}
	e, _, err := p.resolver.Resolve(fc.s.ctx, fc.sni)
	if err != nil {
		if errkind.Is(err, errkind.NotFound) || errkind.Is(err, errkind.InvalidArgument) {
			p.m.requests[listenerHTTPS][outcomeMisdirected].Inc()
			return fc.writeError(421, "misdirected request: this host is no longer served here", false)
		}
		p.m.requests[listenerHTTPS][outcomeUnavailable].Inc()
		return fc.writeError(503, "certificate service unavailable", false)
	}
	p.m.requests[listenerHTTPS][outcomeProxied].Inc()
	addr := e.Route.Upstream
	if addr == "" {
		addr = p.cfg.DefaultUpstream
	}
	out := getBuffer()
	defer putBuffer(out)
	*out = fc.appendRequest((*out)[:0], msg)
	return fc.exchange(addr, out)
}

// Fields the gateway never forwards upstream as the client sent them: hop-by-hop ones
// (RFC 9110 7.6.1, and those net/http's ReverseProxy removes), the framing it writes
// itself, and the forwarded headers it sets.
func skipRequestField(name []byte) bool {
	switch len(name) {
	case 2:
		return httpwire.EqualFold(name, "te") // TE: trailers is written again below
	case 7:
		return httpwire.EqualFold(name, "upgrade") || httpwire.EqualFold(name, "trailer")
	case 9:
		return httpwire.EqualFold(name, "forwarded") || httpwire.EqualFold(name, "x-real-ip")
	case 10:
		return httpwire.EqualFold(name, "connection") || httpwire.EqualFold(name, "keep-alive")
	case 14:
		return httpwire.EqualFold(name, "content-length")
	case 15:
		return httpwire.EqualFold(name, "x-forwarded-for")
	case 16:
		return httpwire.EqualFold(name, "proxy-connection") || httpwire.EqualFold(name, "x-forwarded-host") ||
			httpwire.EqualFold(name, "x-forwarded-port")
	case 17:
		return httpwire.EqualFold(name, "transfer-encoding") || httpwire.EqualFold(name, "x-forwarded-proto")
	case 18:
		return httpwire.EqualFold(name, "proxy-authenticate")
	case 19:
		return httpwire.EqualFold(name, "proxy-authorization")
	}
	return false
}

func namedIn(name []byte, tokens [][]byte) bool {
	for _, t := range tokens {
		if len(t) == len(name) && strings.EqualFold(string(t), string(name)) {
			return true
		}
	}
	return false
}

// appendRequest writes the outbound request: the request line, the client's fields
// less the hop-by-hop ones, the forwarded headers, and the body.
func (fc *fastConn) appendRequest(b, msg []byte) []byte {
	req := &fc.req
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Target...)
	b = append(b, " HTTP/1.1\r\n"...)
	for _, f := range req.Fields {
		if skipRequestField(f.Name) || len(req.ConnectionTokens) > 0 && namedIn(f.Name, req.ConnectionTokens) {
			continue
		}
		b = appendField(b, f.Name, f.Value)
	}
	if req.TETrailers {
		b = append(b, "Te: trailers\r\n"...)
	}
	if hasField(req.Fields, "content-length") {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	b = fc.appendForwarded(b)
	b = append(b, "\r\n"...)
	return append(b, msg[req.HeadLen:]...)
}

func hasField(fields []httpwire.Field, lower string) bool {
	for _, f := range fields {
		if httpwire.EqualFold(f.Name, lower) {
			return true
		}
	}
	return false
}

func appendField(b, name, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendForwarded writes X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, -Host and
// -Port with the same rules as setForwarded (net/http's path).
func (fc *fastConn) appendForwarded(b []byte) []byte {
	req := &fc.req
	xff, realIP := fc.peerHost, fc.peerHost
	proto, hostv, port := "https", req.Host, []byte("443")
	if i := lastColon(req.Host); i >= 0 {
		port = req.Host[i+1:]
	}
	if fc.trusted {
		if chain := joinValues(req.Fields, "x-forwarded-for"); chain != "" {
			xff = chain + ", " + fc.peerHost
			realIP = fc.s.p.clientIn(chain, fc.peerHost)
		}
		if v := firstValue(req.Fields, "x-forwarded-proto"); v != nil {
			proto = string(v)
		}
		if v := firstValue(req.Fields, "x-forwarded-host"); v != nil {
			hostv = v
		}
		if v := firstValue(req.Fields, "x-forwarded-port"); v != nil {
			port = v
		}
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, xff...)
	b = append(b, "\r\nX-Real-Ip: "...)
	b = append(b, realIP...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, proto...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, hostv...)
	b = append(b, "\r\nX-Forwarded-Port: "...)
	b = append(b, port...)
	return append(b, "\r\n"...)
}

// lastColon is the index of the port separator of a Host value, or -1.
func lastColon(host []byte) int {
	for i := len(host) - 1; i >= 0; i-- {
		switch host[i] {
		case ':':
			return i
		case ']':
			return -1
		}
	}
	return -1
}

func hostWithoutPortBytes(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		return host
	}
	if i := lastColon(host); i >= 0 {
		return host[:i]
	}
	return host
}

func joinValues(fields []httpwire.Field, lower string) string {
	var sb strings.Builder
	for _, f := range fields {
		if httpwire.EqualFold(f.Name, lower) {
			if sb.Len() > 0 {
				sb.WriteString(", ")
			}
			sb.Write(f.Value)
		}
	}
	return sb.String()
}

func firstValue(fields []httpwire.Field, lower string) []byte {
	for _, f := range fields {
		if httpwire.EqualFold(f.Name, lower) && len(f.Value) > 0 {
			return f.Value
		}
	}
	return nil
}

// idempotent reports whether a request may be sent again after a reused upstream
// connection failed before any response byte (net/http's Transport rule).
func (fc *fastConn) idempotent() bool {
	switch string(fc.req.Method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return hasField(fc.req.Fields, "idempotency-key") || hasField(fc.req.Fields, "x-idempotency-key")
}

// exchange sends the request in out to addr and forwards the response to the client.
func (fc *fastConn) exchange(addr string, out *[]byte) bool {
	p := fc.s.p
	m := p.m
	up := getBuffer()
	defer putBuffer(up)
	start := time.Now()
	fc.startWatch()
	uc, n, err := fc.roundTrip(addr, *out, up, start)
	fc.stopWatch()
	m.latency[targetUpstream].Observe(time.Since(start).Seconds())
	if fc.clientGone.Load() {
		m.failures[targetUpstream][failureClientGone].Inc()
		if uc != nil {
			uc.Close()
		}
		return false
	}
	if err != nil {
		m.response(targetUpstream, 0)
		return fc.upstreamFailed(err)
	}
	m.response(targetUpstream, fc.resp.Status)
	keep, upstreamReusable := fc.forward(uc, up, n, out)
	if upstreamReusable {
		p.fast.put(addr, uc)
	} else {
		uc.Close()
	}
	return keep
}

// roundTrip writes the request and reads the response head into up: n bytes, the
// head parsed into fc.resp. A reused connection that fails before answering is
// replaced once for requests that may be sent again.
func (fc *fastConn) roundTrip(addr string, out []byte, up *[]byte, start time.Time) (*net.TCPConn, int, error) {
	p := fc.s.p
	replayable := fc.idempotent()
	for attempt := 0; ; attempt++ {
		uc, reused, err := p.fast.get(fc.s.ctx, addr, !replayable)
		if err != nil {
			return nil, 0, err
		}
		uc.SetDeadline(start.Add(p.cfg.ResponseHeaderTimeout))
		fc.upConn.Store(uc)
		if fc.clientGone.Load() {
			uc.SetReadDeadline(aLongTimeAgo)
		}
		n, err := fc.readResponse(uc, out, up)
		fc.upConn.Store(nil)
		if err == nil {
			return uc, n, nil
		}
		uc.Close()
		if !reused || n > 0 || attempt > 0 || !replayable || isTimeout(err) {
			return nil, 0, err
		}
	}
}

func (fc *fastConn) readResponse(uc *net.TCPConn, out []byte, up *[]byte) (int, error) {
	if _, err := uc.Write(out); err != nil {
		return 0, err
	}
	buf := (*up)[:cap(*up)]
	n := 0
	for {
		if n == len(buf) {
			if n >= maxResponseHead {
				return n, httpwire.ErrHeadTooLarge
			}
			grown := make([]byte, 2*len(buf))
			copy(grown, buf[:n])
			buf = grown
			*up = grown[:0]
		}
		k, err := uc.Read(buf[n:])
		n += k
		if k > 0 {
			ok, perr := httpwire.ParseResponse(buf[:n], maxResponseHead, &fc.resp)
			if perr != nil {
				return n, perr
			}
			if ok {
				if fc.resp.Status == 101 {
					return n, errUnexpectedUpgrade
				}
				return n, nil
			}
		}
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
}

// startWatch arms the watch of the client for one upstream round trip.
func (fc *fastConn) startWatch() {
	if fc.watchTimer == nil {
		fc.watchDone = make(chan struct{}, 1)
		fc.watchTimer = time.AfterFunc(watchAfter, fc.watch)
		return
	}
	fc.watchTimer.Reset(watchAfter)
}

// watch runs when the upstream is slow: it reads from the client, which has nothing to
// say until it has its response. An error means the client left: the upstream wait is
// cut short. A byte (a pipelined request) ends the watch and is kept.
func (fc *fastConn) watch() {
	defer func() { fc.watchDone <- struct{}{} }()
	var b [1]byte
	n, err := fc.tc.Read(b[:])
	if n > 0 {
		fc.peeked = append(fc.peeked, b[0])
		return
	}
	if err != nil && !isTimeout(err) {
		fc.clientGone.Store(true)
		if uc := fc.upConn.Load(); uc != nil {
			uc.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// stopWatch ends the watch: the timer is stopped, or the background read is woken by a
// past deadline and waited for.
func (fc *fastConn) stopWatch() {
	if fc.watchTimer.Stop() {
		return
	}
	fc.c.SetReadDeadline(aLongTimeAgo)
	<-fc.watchDone
	if len(fc.peeked) > 0 {
		fc.in = append(fc.in, fc.peeked...)
		fc.peeked = fc.peeked[:0]
	}
}

// aLongTimeAgo is a deadline that has passed: it wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

var errUnexpectedUpgrade = errors.New("upstream switched protocols without being asked")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upstreamFailed answers a request whose upstream gave no usable response head.
func (fc *fastConn) upstreamFailed(err error) bool {
	m := fc.s.p.m
	var op *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &op) && op.Op == "dial", errors.As(err, &dnsErr):
		m.failures[targetUpstream][failureUnreachable].Inc()
		return fc.writeError(502, "upstream unreachable", false)
	case isTimeout(err):
		m.failures[targetUpstream][failureTimeout].Inc()
		return fc.writeError(504, "upstream timed out", false)
	default:
		m.failures[targetUpstream][failureOther].Inc()
		fc.s.p.log.Debug("upstream request failed", zap.String("host", string(fc.req.Host)), zap.Error(err))
		return fc.writeError(502, "bad gateway", false)
	}
}

// forward writes the response whose head (and perhaps some body) is in up[:n] to the
// client, then streams the rest of its body. keep: the client connection stays open;
// reusable: the upstream connection can serve another request.
func (fc *fastConn) forward(uc *net.TCPConn, up *[]byte, n int, out *[]byte) (keep, reusable bool) {
	buf := (*up)[:cap(*up)]
	data := buf[:n]
	// Interim responses (103 Early Hints, 100) go to the client as they come.
	for fc.resp.Status < 200 {
		if _, err := fc.tc.Write(fc.appendResponseHead((*out)[:0], false)); err != nil {
			return false, false
		}
		data = data[fc.resp.HeadLen:]
		for {
			ok, err := httpwire.ParseResponse(data, maxResponseHead, &fc.resp)
			if err != nil || ok && fc.resp.Status == 101 {
				return false, false
			}
			if ok {
				break
			}
			if len(data) == len(buf) {
				return false, false
			}
			copy(buf, data)
			k, err := uc.Read(buf[len(data):])
			data = buf[:len(data)+k]
			if err != nil && k == 0 {
				return false, false
			}
		}
	}
	resp := &fc.resp
	noBody := resp.NoBody(string(fc.req.Method) == "HEAD")
	closeClient := fc.req.Close || fc.s.closing.Load() || !noBody && !resp.Chunked && resp.ContentLength < 0
	b := fc.appendResponseHead((*out)[:0], closeClient)
	body := data[resp.HeadLen:]
	reusable = !resp.Close
	keep = !closeClient
	switch {
	case noBody:
		if len(body) > 0 {
			reusable = false // bytes the response should not have had
		}
		_, err := fc.tc.Write(b)
		return keep && err == nil, reusable
	case resp.ContentLength >= 0:
		left := resp.ContentLength
		if int64(len(body)) > left {
			body, reusable = body[:left], false
		}
		left -= int64(len(body))
		if len(b)+len(body) <= cap(b) || left == 0 {
			b = append(b, body...)
			body = nil
		}
		*out = b
		if _, err := fc.tc.Write(b); err != nil {
			return false, false
		}
		if len(body) > 0 {
			if _, err := fc.tc.Write(body); err != nil {
				return false, false
			}
		}
		if left == 0 {
			return keep, reusable
		}
		uc.SetReadDeadline(time.Time{}) // bodies may take as long as they take
		for left > 0 {
			k, err := uc.Read(buf[:min(int64(len(buf)), left)])
			left -= int64(k)
			if k > 0 {
				if _, werr := fc.tc.Write(buf[:k]); werr != nil {
					return false, false
				}
			}
			if err != nil && left > 0 {
				return false, false // cut short: the client sees the connection close
			}
		}
		return keep, reusable
	case resp.Chunked:
		var sc httpwire.ChunkScanner
		k, err := sc.Scan(body)
		if err != nil {
			// Nothing was sent yet: the client gets a 502 instead of a broken body.
			fc.s.p.m.failures[targetUpstream][failureOther].Inc()
			return fc.writeError(502, "bad gateway", false), false
		}
		if k < len(body) {
			reusable = false
		}
		b = append(b, body[:k]...)
		*out = b
		if _, err := fc.tc.Write(b); err != nil {
			return false, false
		}
		if sc.Done() {
			return keep, reusable
		}
		uc.SetReadDeadline(time.Time{})
		for !sc.Done() {
			r, rerr := uc.Read(buf)
			k, err := sc.Scan(buf[:r])
			if err != nil {
				return false, false
			}
			if k < r {
				reusable = false
			}
			if k > 0 {
				if _, werr := fc.tc.Write(buf[:k]); werr != nil {
					return false, false
				}
			}
			if rerr != nil && !sc.Done() {
				return false, false
			}
		}
		return keep, reusable
	default: // delimited by the upstream closing
		b = append(b, body...)
		*out = b
		if _, err := fc.tc.Write(b); err != nil {
			return false, false
		}
		uc.SetReadDeadline(time.Time{})
		for {
			r, err := uc.Read(buf)
			if r > 0 {
				if _, werr := fc.tc.Write(buf[:r]); werr != nil {
					return false, false
				}
			}
			if err != nil {
				return false, false
			}
		}
	}
}

// Response fields the gateway drops: hop-by-hop ones (as net/http's ReverseProxy) and
// the framing it writes itself.
func skipResponseField(name []byte) bool {
	switch len(name) {
	case 7:
		return httpwire.EqualFold(name, "upgrade")
	case 10:
		return httpwire.EqualFold(name, "connection") || httpwire.EqualFold(name, "keep-alive")
	case 14:
		return httpwire.EqualFold(name, "content-length")
	case 16:
		return httpwire.EqualFold(name, "proxy-connection")
	case 17:
		return httpwire.EqualFold(name, "transfer-encoding")
	case 18:
		return httpwire.EqualFold(name, "proxy-authenticate")
	}
	return false
}

// appendResponseHead writes the client's response head from fc.resp: the status line,
// the upstream's end-to-end fields, the framing, a Date if the upstream sent none.
func (fc *fastConn) appendResponseHead(b []byte, closeClient bool) []byte {
	resp := &fc.resp
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(resp.Status), 10)
	b = append(b, ' ')
	b = append(b, resp.Reason...)
	b = append(b, "\r\n"...)
	for _, f := range resp.Fields {
		if skipResponseField(f.Name) || len(resp.ConnectionTokens) > 0 && namedIn(f.Name, resp.ConnectionTokens) {
			continue
		}
		b = appendField(b, f.Name, f.Value)
	}
	if resp.Status < 200 {
		return append(b, "\r\n"...)
	}
	switch {
	case resp.Chunked && !resp.NoBody(string(fc.req.Method) == "HEAD"):
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case resp.HasLength && resp.Status != 204:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, resp.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	if !resp.HasDate {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	if closeClient {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// writeError answers with a short plain-text body, as http.Error does. It returns
// whether the connection stays open.
func (fc *fastConn) writeError(code int, body string, closeConn bool) bool {
	closeConn = closeConn || fc.req.Close || fc.s.closing.Load()
	out := getBuffer()
	defer putBuffer(out)
	b := append((*out)[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, statusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	if code == 503 {
		b = append(b, "Retry-After: 5\r\n"...)
	}
	b = append(b, "Date: "...)
	b = append(b, httpDate()...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)+1), 10)
	if closeConn {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	b = append(b, '\n')
	*out = b
	_, err := fc.tc.Write(b)
	return err == nil && !closeConn
}

func statusText(code int) string {
	switch code {
	case 421:
		return "Misdirected Request"
	case 431:
		return "Request Header Fields Too Large"
	case 400:
		return "Bad Request"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "Status " + strconv.Itoa(code)
}

// httpDate is the current time as an HTTP date, formatted once per second.
func httpDate() string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &dateText{unix: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	unix int64
	text string
}

var cachedDate atomic.Pointer[dateText]
