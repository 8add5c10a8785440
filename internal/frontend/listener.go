package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/batchconn"
)

// listener is one bound TCP socket (plus its UDP socket for HTTP/3) shared
// by all bindings with the same scheme, address and port.
//
// One acceptor goroutine owns raw and starts the lean loop on each
// connection (HTTP/1.x; it hands HTTP/2 ones to the current generation's
// HTTP/2 server), or, when tests turn the lean loop off, hands it to the
// current generation's http.Server. A reload that changes server-level settings
// starts a new generation on the same socket and drains the old one, so no
// connection is refused or dropped.
type listener struct {
	key    string // siteconfig.Binding.ListenerKey
	scheme string // "http" or "https"
	srv    *Server
	raw    net.Listener

	routes atomic.Pointer[lnRoutes]
	sni    atomic.Pointer[hostTable[*tls.Config]] // https only

	cur atomic.Pointer[generation]
	set serverSettings // settings of cur; guarded by Server.mu

	h3  *http3.Server  // nil unless HTTP/3 is on
	udp net.PacketConn // the HTTP/3 socket
	// pendingUDP is a socket bound by Reload for HTTP/3 being switched on,
	// served once the reload commits. Guarded by Server.mu.
	pendingUDP net.PacketConn
	closed     atomic.Bool // raw was closed on purpose
	// lean tracks the connections the lean HTTP/1.1 loop serves (HTTP/1.1
	// in cleartext and over TLS); HTTP/2 ones go to the current
	// generation's HTTP/2 server (generation.h2).
	lean leanSet
	// idleHTTP tracks the HTTP/2 connections with no stream open and the
	// connections of the net/http servers (all generations) that wait
	// for a request, for shedIdle.
	idleHTTP idleSet
	// tlsBase is the TLS configuration of an https listener (SNI picks
	// the binding's); nil for http.
	tlsBase *tls.Config
}

// lnRoutes is what the request path of one listener reads, swapped whole
// on reload.
type lnRoutes struct {
	hosts  hostTable[*siteRoute]
	altSvc string // Alt-Svc response header when HTTP/3 is on, else ""
	// trusted are the proxies whose X-Forwarded-For is believed.
	trusted []netip.Prefix
}

// serverSettings are the http.Server fields that cannot change while it runs.
type serverSettings struct {
	readHeader  time.Duration
	idle        time.Duration
	send        time.Duration // Timeouts.Send, 0 for none
	maxHeader   int
	http2       bool
	h2c         bool
	http3       bool
	shutdownDur time.Duration
}

// generation is one set of server settings serving a listener: its
// HTTP/2 connections (h2), and the http.Server that serves the
// connections the lean loop does not take (all of them when tests turn
// the lean loop off).
type generation struct {
	hs  *http.Server
	ln  *chanListener
	h2  h2Set
	set serverSettings // the settings hs was built with
}

// chanListener is the net.Listener one generation's http.Server accepts from.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection handed over by the acceptor.
func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

// Close stops this generation's Accept; the shared socket stays open. Safe to
// call more than once.
func (c *chanListener) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }

// acceptLoop owns l.raw: it accepts until the socket is closed and hands each
// connection to the current generation.
func (l *listener) acceptLoop(log *slog.Logger) {
	if wl, ok := l.raw.(*waitListener); ok && leanHTTP1 {
		l.acceptRawLoop(log, wl.rc)
		return
	}
	var backoff time.Duration
	for {
		c, err := l.raw.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (EMFILE and the like): back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept", "listener", l.key, "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			<-t.C
			continue
		}
		backoff = 0
		if c = l.track(c); c == nil {
			continue
		}
		if l.scheme == "https" {
			c = tls.Server(c, l.tlsBase)
		}
		if leanHTTP1 {
			l.startLean(c)
			continue
		}
		l.handOver(c)
	}
}

// waitListener is a cleartext listener with a duplicate of its socket in
// Go's poller (wait), for acceptRawLoop to wait on: the RawConn of net's
// listener cannot wait (its Read fails). Closing the listener closes the
// duplicate too, which ends that wait.
type waitListener struct {
	net.Listener
	wait *os.File
	rc   syscall.RawConn // wait's
}

// withWait returns ln as a waitListener, or ln itself when its socket
// cannot be duplicated (then acceptLoop accepts through net).
func withWait(ln net.Listener) net.Listener {
	fl, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return ln
	}
	// net's listening socket is non-blocking, and so is the duplicate
	// (they share the flag): os.NewFile puts it in Go's poller.
	f, err := fl.File()
	if err != nil {
		return ln
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return ln
	}
	return &waitListener{Listener: ln, wait: f, rc: rc}
}

// File returns a duplicate of the listening socket (see ListenerFiles)
// whose Fd leaves the socket non-blocking. net's File would not: its Fd
// makes the descriptor blocking, and starting a process with the file
// (exec.Cmd.ExtraFiles calls Fd, as an upgrade does) would make the
// listening socket blocking (a duplicate shares the flag). Then
// acceptRawLoop's next accept4, a raw system call, would wait in the
// kernel holding its P, and the whole process would stop at the next
// garbage collection until a connection came.
func (l *waitListener) File() (*os.File, error) {
	var fd int
	var err error
	if cerr := l.rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, fmt.Errorf("duplicate listening socket: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("duplicate listening socket: %w", os.NewSyscallError("fcntl", err))
	}
	// os.NewFile of a non-blocking descriptor keeps it non-blocking in Fd.
	return os.NewFile(uintptr(fd), "tcp-listener"), nil
}

// Close closes the listening socket and its duplicate.
func (l *waitListener) Close() error {
	_ = l.wait.Close()
	return l.Listener.Close()
}

// acceptRawLoop is acceptLoop for a cleartext listener: it accepts its
// connections as rawConns (raw system calls, outside Go's poller until
// one has to wait) for the lean loop. Within one wait of Go's poller for
// the listening socket (rc, the listener's), it accepts until none is
// waiting; closing the listener ends the wait.
func (l *listener) acceptRawLoop(log *slog.Logger, rc syscall.RawConn) {
	a := newRawAccepter(l)
	var backoff time.Duration
	// next is the storage of the next connection (its leanConn holds its
	// rawConn and trackedConn): made for an accept, kept when none came.
	var next *leanConn
	for {
		var aerr error
		err := rc.Read(func(fd uintptr) bool {
			for !l.closed.Load() {
				if next == nil {
					next = &leanConn{}
				}
				err := a.accept(fd, &next.rawMem)
				switch err {
				case nil:
					backoff = 0
					lc := next
					next = nil
					if l.trackIn(&lc.rawMem, &lc.trackedMem) {
						l.startLeanIn(lc, &lc.trackedMem)
					}
					continue
				case unix.EAGAIN:
					return false
				case unix.EINTR, unix.ECONNABORTED:
					continue
				}
				aerr = os.NewSyscallError("accept4", err)
				return true
			}
			return true
		})
		// Closing the listener closes wait, whose Read then fails with
		// os.ErrClosed.
		if l.closed.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return
		}
		if err == nil {
			err = aerr
		}
		if err == nil {
			continue
		}
		// Transient (EMFILE and the like): back off as net/http does.
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		log.Warn("accept", "listener", l.key, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		<-t.C
	}
}

// handOver gives c to the current generation's http.Server (tests that
// turn the lean loop off; an ALPN protocol other than h2 and http/1.1);
// if that one is being retired it retries with its successor, and closes
// c when there is none. c gets TCP keep-alive probes, as a connection
// that leaves the lean loop does (see listenConfig).
func (l *listener) handOver(c net.Conn) {
	keepAliveOn(c)
	for {
		g := l.cur.Load()
		select {
		case g.ln.ch <- c:
			return
		case <-g.ln.done:
			if l.cur.Load() == g {
				_ = c.Close() // shutting down
				return
			}
		}
	}
}

// newGeneration builds the http.Server for settings set.
func (l *listener) newGeneration(set serverSettings) *generation {
	ln := newChanListener(l.raw.Addr())
	var p http.Protocols
	p.SetHTTP1(true)
	if l.scheme == "https" {
		p.SetHTTP2(set.http2)
	} else {
		p.SetUnencryptedHTTP2(set.h2c)
	}
	hs := &http.Server{
		Handler: l,
		// ReadHeaderTimeout is the slow-loris guard (Timeouts.Header, HTTP.sys
		// HeaderWait); 0 turns it off.
		ReadHeaderTimeout: set.readHeader,
		// IdleTimeout bounds keep-alive waits (Timeouts.Idle, HTTP.sys
		// IdleConnection). ReadTimeout and WriteTimeout stay 0: bodies have
		// their own inactivity timeout and responses may stream for long.
		// The send timeout is HTTP/2's WriteByteTimeout (http2Config); the
		// lean loop and the HTTP/2 server apply it themselves (net/http
		// serves only when tests turn the lean loop off, and then HTTP/1
		// without it).
		IdleTimeout: set.idle,
		// A hard cap of twice Limits.MaxRequestBytes (see settingsFor); the
		// handler enforces the exact limit and logs it.
		MaxHeaderBytes: set.maxHeader,
		Protocols:      &p,
		HTTP2:          http2Config(set.send),
		ErrorLog:       slog.NewLogLogger(l.srv.log.Handler(), slog.LevelDebug),
		ConnContext:    connContext,
		ConnState:      l.idleHTTP.connState,
	}
	return &generation{hs: hs, ln: ln, set: set}
}

// tlsStateKey carries the TLS state of a handed-over connection.
type tlsStateKey struct{}

// connContext attaches the connection's connInfo to its context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*prefixConn); ok {
		c = pc.Conn
		if tc, ok := c.(*tls.Conn); ok {
			// An HTTP/1.1 connection over TLS that the lean loop handed
			// over: net/http does not see the *tls.Conn, so r.TLS is set
			// from here (see serveHTTP).
			st := tc.ConnectionState()
			ctx = context.WithValue(ctx, tlsStateKey{}, &st)
			c = tc.NetConn()
		}
	}
	tc, _ := c.(*trackedConn)
	return context.WithValue(ctx, connInfoKey{}, &connInfo{over: tc != nil && tc.over})
}

// serve runs g until it is shut down. Owned by Server.wg.
// Connections of https listeners arrive as *tls.Conn (acceptLoop wraps
// them), handshaken already when the lean loop handed them over.
func (l *listener) serve(g *generation) {
	if err := g.hs.Serve(g.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.srv.log.Error("serve", "listener", l.key, "err", err)
	}
}

// serveH3 runs the HTTP/3 server until it is shut down. Owned by Server.wg.
// The QUIC transport on udp admits each connection through
// quicConnContext (the connection limits); it ends when udp is closed,
// after the server's shutdown.
func (l *listener) serveH3(h3 *http3.Server, udp net.PacketConn) {
	tr := &quic.Transport{Conn: udp, ConnContext: l.quicConnContext}
	ln, err := tr.ListenEarly(http3.ConfigureTLSConfig(h3.TLSConfig), quicConfig())
	if err != nil {
		l.srv.log.Error("serve http3", "listener", l.key, "err", err)
		return
	}
	// Closing the listener refuses handshakes in flight and leaves the
	// connections it accepted to the server's graceful shutdown.
	defer ln.Close()
	if err := h3.ServeListener(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		l.srv.log.Error("serve http3", "listener", l.key, "err", err)
	}
}

// drain shuts g down gracefully within budget, then forcibly.
func drain(g *generation, budget time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), max(budget, 0))
	defer cancel()
	g.shutdown(ctx)
}

// shutdown shuts g's servers down gracefully until ctx ends, then
// forcibly.
func (g *generation) shutdown(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { g.h2.drain(ctx) })
	if err := g.hs.Shutdown(ctx); err != nil {
		_ = g.hs.Close()
	}
	wg.Wait()
}

// leanHTTP1 switches the lean HTTP/1.1 loop on for cleartext listeners;
// tests turn it off to run the net/http path.
var leanHTTP1 = true

// trackedConn releases its place in the connCounter once when closed.
type trackedConn struct {
	net.Conn
	place  connPlace
	over   bool
	closed atomic.Bool // Close ran: the place was given back
	// batch, once set, takes the connection's writes, write deadlines and
	// Close: an HTTP/2 connection's (batchHTTP2), whose server writes
	// every frame on its own. Until then (HTTP/1) writes go straight to
	// the socket.
	batch atomic.Pointer[batchconn.Conn]
}

// batchHTTP2 gathers the writes of an HTTP/2 connection (h2c with prior
// knowledge, or h2 chosen by ALPN, below its TLS) into fewer system calls:
// the HTTP/2 server writes a response's HEADERS, DATA and trailers as
// frames of their own. c is the connection as accepted (a *trackedConn, or a
// *tls.Conn over one); other connections are left as they are.
func batchHTTP2(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*trackedConn); ok {
		tc.batch.Store(batchconn.New(tc.Conn))
	}
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if b := c.batch.Load(); b != nil {
		return b.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	if b := c.batch.Load(); b != nil {
		return b.SetWriteDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if b := c.batch.Load(); b != nil {
		return b.SetDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.place.release()
	}
	if b := c.batch.Load(); b != nil {
		return b.Close()
	}
	return c.Conn.Close()
}
