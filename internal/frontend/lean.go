package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// leanConn is one cleartext client connection served by the lean HTTP/1.1
// loop: one goroutine reads each request head with the strict parser
// (internal/h1), runs it through serve, writes the response and goes on
// with the next, holding no buffer while the connection is idle. Only an
// HTTP/2 connection (h2c with prior knowledge) goes to net/http, with the
// bytes read so far; an upgraded one (WebSocket) leaves the loop with its
// hijacker.
type leanConn struct {
	l      *listener
	c      net.Conn   // the tracked connection
	sock   *h1.Socket // c's socket for writes, nil if c is not one
	in     *h1.Input
	req    h1.Request
	body   h1.Body
	w      leanWriter
	over   bool
	ctx    context.Context // cancelled when the connection is force-closed
	cancel context.CancelFunc

	remote, local string
	clientIP      netip.Addr
	// conn is the connection's pipeline state (pipeline.Request.Conn).
	conn pipeline.Conn
	tls  *tls.ConnectionState // nil over cleartext

	// peekRaw is the TCP socket under c (TLS or not), for watching long
	// requests for the client going away; hu is that watch.
	peekRaw syscall.RawConn
	hu      hangup
	// tcp is the TCP connection under c (TLS or not), nil if c is not one;
	// a refusal half-closes it.
	tcp *net.TCPConn

	// state is guarded by the leanSet's mutex.
	state leanState
	// served is set once a request was read (owned by the loop).
	served bool
}

// newConnGrace is how long a shutdown waits for the first request of a
// connection accepted just before it (net/http waits 5 s for StateNew).
const newConnGrace = 5 * time.Second

type leanState uint8

const (
	leanActive leanState = iota // reading or serving a request
	leanIdle                    // waiting for the next request
	// leanNew: waiting for the first request. A shutdown does not close
	// such a connection: its client has already sent, or is sending, a
	// request it cannot know to retry (as net/http treats StateNew). It is
	// served, then closed; the drain's deadline bounds the wait.
	leanNew
)

// leanSet tracks a listener's lean connections for shutdown.
type leanSet struct {
	mu       sync.Mutex // protects conns, draining, stop and each conn's state
	conns    map[*leanConn]struct{}
	draining bool
	stop     chan struct{} // ends watchLoop; nil until the first connection
	wg       sync.WaitGroup
}

// startLean serves c with the lean loop on a goroutine of its own, owned
// by the listener's leanSet; c is closed when the set is draining.
func (l *listener) startLean(c net.Conn) {
	lc := &leanConn{l: l, c: c}
	lc.ctx, lc.cancel = context.WithCancel(context.Background())
	if !l.lean.add(lc) {
		lc.cancel()
		_ = c.Close()
		return
	}
	go l.serveLean(lc)
}

// serveLean serves lc's connection; it hands it to net/http when it
// starts with the HTTP/2 preface.
func (l *listener) serveLean(lc *leanConn) {
	defer l.lean.remove(lc)
	c := lc.c
	defer lc.cancel()
	var raw syscall.RawConn
	if tc, ok := c.(*tls.Conn); ok {
		if !lc.handshake(tc) {
			return
		}
	}
	if tc, ok := c.(*trackedConn); ok {
		lc.over = tc.over
		lc.tcp, _ = tc.Conn.(*net.TCPConn)
		if sc, ok := tc.Conn.(syscall.Conn); ok {
			raw, _ = sc.SyscallConn()
		}
		if raw != nil {
			lc.sock = h1.NewSocket(raw)
		}
	}
	lc.in = h1.NewInput(c, raw)
	lc.remote, lc.local = c.RemoteAddr().String(), c.LocalAddr().String()
	lc.peekRaw = raw
	if tc, ok := c.(*tls.Conn); ok {
		if t, ok := tc.NetConn().(*trackedConn); ok {
			lc.over = t.over
			lc.tcp, _ = t.Conn.(*net.TCPConn)
			if sc, ok := t.Conn.(syscall.Conn); ok {
				lc.peekRaw, _ = sc.SyscallConn()
			}
		}
	}
	if ap, err := netip.ParseAddrPort(lc.remote); err == nil {
		lc.clientIP = ap.Addr().Unmap()
	}
	lc.w.lc = lc
	prefix, handOff := lc.loop()
	switch {
	case handOff:
		batchHTTP2(c)
		l.handOver(&prefixConn{Conn: c, prefix: prefix})
	case !lc.w.hijacked: // a hijacked connection is its hijacker's to close
		_ = c.Close()
	}
}

// handshake runs the TLS handshake within the header timeout. A client
// that chose HTTP/2 is handed to net/http at once; false means lc is done
// (handed over or failed).
func (lc *leanConn) handshake(tc *tls.Conn) bool {
	set := lc.l.cur.Load().set
	_ = tc.SetDeadline(deadline(set.readHeader))
	err := tc.HandshakeContext(lc.ctx)
	if f := lc.l.srv.tlsObserver; f != nil {
		f(lc.l.key, err)
	}
	if err != nil {
		lc.l.srv.log.Debug("TLS handshake", "listener", lc.l.key, "remote", tc.RemoteAddr().String(), "err", err)
		_ = tc.Close()
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == acmeTLS1 {
		// A tls-alpn-01 validation: the handshake was the answer, and no
		// HTTP may follow on this connection (RFC 8737).
		_ = tc.Close()
		return false
	}
	if st.NegotiatedProtocol == "h2" {
		batchHTTP2(tc)
	}
	if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		lc.l.handOver(tc)
		return false
	}
	lc.tls = &st
	return true
}

// loop serves requests until the connection ends or leaves the loop
// (false), or is to be handed to net/http with prefix, the bytes already
// read (true): only an HTTP/2 connection preface is, as the first bytes of
// a cleartext connection of a listener that offers h2c. Every HTTP/1 byte
// of the connection is read here, by the strict parser.
func (lc *leanConn) loop() (prefix []byte, handOff bool) {
	defer lc.in.Release()
	for {
		set := lc.l.cur.Load().set
		if len(lc.in.Buffered()) == 0 {
			lc.in.Release()
			lc.releaseIdle()
			wait := leanIdle
			if !lc.served {
				wait = leanNew
			}
			draining := !lc.l.lean.setState(lc, wait)
			if draining && wait == leanIdle {
				return nil, false
			}
			if draining {
				_ = lc.c.SetReadDeadline(time.Now().Add(newConnGrace))
			} else {
				_ = lc.c.SetReadDeadline(deadline(set.idle))
			}
			err := lc.in.Fill()
			if (!lc.l.lean.setState(lc, leanActive) && lc.served) || err != nil {
				return nil, false
			}
		}
		_ = lc.c.SetReadDeadline(deadline(set.readHeader))
		n, err := lc.scan(set.maxHeader)
		if errors.Is(err, h1.ErrHandOff) {
			if !lc.served && lc.tls == nil && set.h2c {
				return lc.handOffBytes(), true
			}
			err = &h1.Error{Status: http.StatusHTTPVersionNotSupported, Reason: "HTTP/2 preface without h2c"}
		}
		if err != nil {
			var he *h1.Error
			if errors.As(err, &he) {
				lc.refuse(he)
			}
			return nil, false // timeout, EOF, or refused
		}
		start := time.Now()
		head := string(lc.in.Buffered()[:n])
		lc.req.Reset()
		if lc.req.Header.Fields == nil {
			lc.req.Header.Fields = (*fieldsPool.Get().(*[]h1.Field))[:0]
		}
		err = h1.Parse(head, &lc.req)
		lc.in.Discard(n)
		if err != nil {
			lc.refuse(err.(*h1.Error))
			return nil, false
		}
		_ = lc.c.SetReadDeadline(time.Time{})
		lc.served = true
		if lc.req.Path == "*" {
			if !lc.options() {
				return nil, false
			}
			continue
		}
		if !lc.serveOne(start) {
			return nil, false
		}
	}
}

// options answers "OPTIONS *" (a question about the server, not about a
// resource) without an app, as net/http does: 200 with no body. A request
// with a body is answered and the connection closed rather than the body
// read. It reports whether the connection may carry another request.
func (lc *leanConn) options() bool {
	closeAfter := lc.req.Close || lc.req.ContentLength != 0
	lc.w.reset(false, closeAfter)
	lc.w.http10 = lc.req.Proto == "HTTP/1.0"
	lc.w.Header().Set("Content-Length", "0")
	lc.w.WriteHeader(http.StatusOK)
	return lc.w.finish() == nil && !lc.w.closeAfter
}

// fieldsPool and headerPool hold the per-request scratch (parsed fields,
// response header map) of connections that went idle, so an idle
// connection keeps none.
var (
	fieldsPool = sync.Pool{New: func() any { f := make([]h1.Field, 0, 16); return &f }}
	headerPool = sync.Pool{New: func() any { return make(http.Header, 8) }}
)

// releaseIdle gives the request scratch back while the connection waits
// for its next request.
func (lc *leanConn) releaseIdle() {
	if f := lc.req.Header.Fields; f != nil {
		clear(f[:cap(f)])
		lc.req = h1.Request{}
		f = f[:0]
		fieldsPool.Put(&f) // one small allocation per idle period
	}
	if lc.w.header != nil {
		clear(lc.w.header)
		headerPool.Put(lc.w.header)
		lc.w.header = nil
	}
}

// deadline returns now+d, or no deadline for d <= 0.
func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// scan reads until the buffer holds a whole request head and returns its
// length. The buffer grows for a large head up to limit bytes; a larger
// head is refused with 431.
func (lc *leanConn) scan(limit int) (int, error) {
	from := 0
	for {
		buf := lc.in.Buffered()
		n, err := h1.ScanHead(buf, from)
		if n > 0 || err != nil {
			return n, err
		}
		from = len(buf)
		if err := lc.in.Fill(); err != nil {
			if !errors.Is(err, h1.ErrFull) {
				return 0, err
			}
			if !lc.in.Grow(limit) {
				return 0, &h1.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "request head larger than " + strconv.Itoa(limit) + " bytes"}
			}
		}
	}
}

// handOffBytes returns a copy of the buffered bytes (the HTTP/2 preface
// and what followed it) for net/http to read first.
func (lc *leanConn) handOffBytes() []byte {
	b := append([]byte(nil), lc.in.Buffered()...)
	lc.in.Discard(len(b))
	return b
}

// refuse answers a request the parser refused, and the connection closes.
func (lc *leanConn) refuse(e *h1.Error) {
	lc.l.srv.log.Debug("bad request", "listener", lc.l.key, "remote", lc.remote, "reason", e.Reason)
	lc.w.reset(false, true)
	pages.Status(&lc.w, e.Status, 0, "")
	if lc.w.finish() == nil {
		lc.linger()
	}
}

// Lingering after a refusal: at most lingerFor, reading at most
// lingerBytes.
const (
	lingerFor   = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// linger half-closes the connection and reads what the client still sends
// for a moment before the close: closing a socket with unread bytes sends
// a reset, which can destroy the refusal before the client has read it
// (net/http and nginx linger the same way).
func (lc *leanConn) linger() {
	if lc.tcp == nil || lc.tcp.CloseWrite() != nil {
		return
	}
	_ = lc.tcp.SetReadDeadline(time.Now().Add(lingerFor))
	_, _ = io.CopyN(io.Discard, lc.tcp, lingerBytes)
}

// serveOne runs one parsed request through serve. It reports whether the
// connection may carry another request.
func (lc *leanConn) serveOne(start time.Time) (keep bool) {
	st := statePool.Get().(*reqState)
	lc.fill(&st.req)
	st.ctx = lc.ctx
	if st.req.ContentLength != 0 {
		st.src, st.ctl = &lc.body, &lc.w
	}
	lc.body.Reset(lc.in, lc.req.ContentLength)
	if lc.req.Expect100 {
		lc.body.BeforeWait = lc.w.sendContinue
	}
	lc.w.reset(lc.req.Method == http.MethodHead, lc.req.Close)
	lc.w.http10 = lc.req.Proto == "HTTP/1.0"
	if lc.req.ContentLength == 0 && !lc.req.Upgrade {
		// An upgraded connection's bytes are the app's: no watcher reads
		// them.
		lc.hu.begin(start)
	}
	defer func() {
		lc.hu.end(lc)
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				lc.l.srv.log.Error("panic serving request", "remote", lc.remote, "panic", v, "stack", string(debug.Stack()))
			}
			keep = false
			lc.w.abandon()
			return // st is not reused: a panicking handler may still hold it
		}
		st.release()
	}()
	lc.l.srv.serve(lc.l, st, &lc.w, serveOpts{start: start, over: lc.over})
	if lc.w.hijacked {
		return false // the connection left the loop with its hijacker
	}
	if err := lc.w.finish(); err != nil {
		return false
	}
	return !lc.w.closeAfter && (lc.req.ContentLength == 0 || lc.body.Done())
}

// fill describes the parsed request for serve.
func (lc *leanConn) fill(pr *pipeline.Request) {
	r := &lc.req
	pr.Method, pr.Host, pr.Proto = r.Method, r.Host, r.Proto
	pr.RawQuery = r.RawQuery
	pr.RemoteAddr, pr.LocalAddr = lc.remote, lc.local
	pr.Header = &r.Header
	lc.l.describe(pr, r.Path, lc.clientIP)
	pr.TLS = lc.tls
	pr.ContentLength = r.ContentLength
	pr.Conn = &lc.conn
}

// add registers lc, and its goroutine with wg; false when the set is
// draining. (Add happens under mu, before draining is set, so it never
// races drain's Wait.)
func (s *leanSet) add(lc *leanConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	if s.conns == nil {
		s.conns = map[*leanConn]struct{}{}
	}
	s.conns[lc] = struct{}{}
	s.wg.Add(1)
	if s.stop == nil {
		s.stop = make(chan struct{})
		s.wg.Add(1)
		go s.watchLoop(s.stop)
	}
	return true
}

// remove ends lc's registration, once: when its goroutine is done, or
// earlier when its connection was hijacked. A hijacked connection is the
// hijack set's (closed by shutdown), and neither a drain nor a shutdown
// waits for its handler, as with net/http's hijacked connections; the
// handler ends when the connection is closed.
func (s *leanSet) remove(lc *leanConn) {
	s.mu.Lock()
	_, ok := s.conns[lc]
	delete(s.conns, lc)
	s.mu.Unlock()
	if ok {
		s.wg.Done()
	}
}

// setState records lc's state; false when the set is draining and lc
// should close instead.
func (s *leanSet) setState(lc *leanConn, st leanState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc.state = st
	return !s.draining
}

// drain stops the lean connections: idle ones close now, busy ones after
// their current response; when ctx ends first, every one is closed and
// its requests cancelled. It returns when all have ended.
func (s *leanSet) drain(ctx context.Context) {
	s.mu.Lock()
	s.draining = true
	if s.stop != nil {
		close(s.stop)
	}
	for lc := range s.conns {
		switch lc.state {
		case leanIdle:
			_ = lc.c.SetReadDeadline(time.Now()) // ends the wait for a request
		case leanNew:
			_ = lc.c.SetReadDeadline(time.Now().Add(newConnGrace))
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	for lc := range s.conns {
		_ = lc.c.Close()
		lc.cancel()
	}
	s.mu.Unlock()
	<-done
}

// prefixConn is a connection handed to net/http: Read returns the bytes
// the lean loop had read first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
