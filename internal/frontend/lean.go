package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/monoclock"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// leanConn is one cleartext client connection served by the lean HTTP/1.1
// loop: one goroutine reads each request head with the strict parser
// (internal/h1), runs it through serve, writes the response and goes on
// with the next, holding no buffer while the connection is idle. Only an
// HTTP/2 connection (h2c with prior knowledge) goes to the HTTP/2 server (h2.go), with the
// bytes read so far; an upgraded one (WebSocket) leaves the loop with its
// hijacker.
type leanConn struct {
	l    *listener
	c    net.Conn   // the tracked connection
	sock *h1.Socket // c's socket for writes (&socket), nil if c is not one
	in   h1.Input
	req  h1.Request
	body h1.Body
	w    leanWriter
	// ctx ends (Cancel) when the connection is force-closed or its
	// client goes away during a request.
	ctx *leanContext

	remote, local string
	clientIP      netip.Addr
	// conn is the connection's pipeline state (pipeline.Request.Conn).
	conn pipeline.Conn
	tls  *tls.ConnectionState // nil over cleartext

	// peekRaw is the TCP socket under c (TLS or not), for watching long
	// requests for the client going away; hu is that watch.
	peekRaw syscall.RawConn
	hu      hangup
	// socket is sock's storage: part of lc, not an allocation of its own.
	socket h1.Socket
	// tcp is the TCP connection under c (TLS or not), nil if c is not one
	// or is a raw one (see tcpConn); a refusal half-closes it.
	tcp *net.TCPConn
	// raw is the connection under c when it was accepted raw (cleartext,
	// see rawConn), else nil.
	raw *rawConn
	// send is the send timeout of the request being served (Timeouts.Send,
	// 0 for none).
	send time.Duration

	// pollRaw is the socket under c, for parking it in the leanSet's
	// epoll instance; nil when it cannot be parked (TLS: crypto/tls may
	// hold read-ahead bytes the loop cannot see; or no socket).
	pollRaw syscall.RawConn

	// state, and the parking fields below, are guarded by the leanSet's
	// mutex.
	state leanState
	// token names lc in the set's epoll instance and its registered map
	// (0: not registered). It is given at lc's first park and never
	// reused, so an event left over from a closed connection names no
	// live one, even when a new connection has the same descriptor.
	token uint64
	// resume is lc.runReady, bound at the first park, so that starting
	// the goroutine of a wake-up allocates no closure.
	resume func()
	// park is lc's parking state; expires is when the parked
	// connection's keep-alive ends (zero: never; a monoclock.Time).
	park    parkState
	expires time.Time
	// scratch is the request scratch while the connection holds it
	// (takeScratch): req.Header.Fields and w.header are its.
	scratch *leanScratch
	// prev and next link the set's connections (leanSet.conns), guarded
	// by its mutex.
	prev, next *leanConn
	// wait is lc's place in the set's waiting queue of its state
	// (leanSet.waitq), if it is in one. Guarded by the set's mutex.
	wait waitLink[*leanConn]
	over bool // beyond maxConnections (see track)
	// served is set once a request was read (owned by the loop).
	served bool
	// probed is set once TCP keep-alive probes were turned on because
	// the header or idle timeout is off (owned by the loop).
	probed bool
	// readDL is set when the connection's read deadline may be set: by
	// the loop (idle, header), a request body's timeout, a hangup
	// watcher, or a drain. Only the loop clears it, when it clears the
	// deadline.
	readDL atomic.Bool

	// The storage of ctx, and of a raw connection's rawConn and
	// trackedConn (acceptRawLoop): one allocation per connection for all
	// of them.
	ctxMem     leanContext
	rawMem     rawConn
	trackedMem trackedConn
	// remoteMem holds the bytes of a raw connection's remote (see
	// rawRemote).
	remoteMem [48]byte
}

// newConnGrace is how long a shutdown waits for the first request of a
// connection accepted just before it (net/http waits 5 s for StateNew).
const newConnGrace = 5 * time.Second

// parkState is whether a registered connection is parked, and whether an
// event came for it while it was not.
type parkState uint8

const (
	parkNone   parkState = iota // its goroutine runs (serving, or about to park)
	parkParked                  // parked: the set owns lc, no goroutine
	// parkWoken: an event (bytes, or the peer's close) came while lc was
	// not parked. Edge-triggered, it is not reported again: the park that
	// follows reads instead of sleeping.
	parkWoken
)

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

// leanSet tracks a listener's lean connections for shutdown, and parks
// those that wait for a request: a connection that finished a response
// and has no unread bytes buffered, or a new cleartext one whose first
// request has not come, is marked parked (its socket was registered in
// the set's epoll instance at its first park) and ends its goroutine,
// holding no goroutine stack and no buffer until bytes come; then the set
// serves it again on a new goroutine. (A raw connection, see rawConn,
// that waited on its goroutine would move into Go's poller.) The
// keep-alive timeout of a parked connection is kept by the set's ticker
// (watchLoop), not by a timer of its own.
type leanSet struct {
	mu sync.Mutex // protects the fields below and each conn's state and parking
	// conns are the set's connections, newest first, linked through
	// their prev and next: adding and removing one is no map operation.
	// nconns counts them.
	conns  *leanConn
	nconns int
	// waitq are the connections that wait for a request and for which no
	// event has come since they began (see wait), one queue per state
	// (leanIdle, leanNew), the one that began waiting first at the head:
	// the order maxConnections sheds them in (shedIdle).
	waitq [2]waitQueue[*leanConn]
	// draining is set by drain, under mu; add, park and setState read it
	// under mu (so a connection is never added or parked after drain
	// looked), the writer's isDraining without it (a late "Connection:
	// close" only; the connection's next setState or park closes it).
	draining atomic.Bool
	stop     chan struct{} // ends watchLoop; nil until the first connection
	// poll is the epoll instance of the parked connections, made with the
	// first connection; nil when it could not be made (every connection
	// then waits for its next request on its goroutine).
	poll *idlePoller
	// registered are the connections registered in poll, parked or
	// not, by token (leanConn.token).
	registered map[uint64]*leanConn
	lastToken  uint64
	// wg counts the connections (not their goroutines: a parked
	// connection has none) and the set's two goroutines.
	wg sync.WaitGroup
}

// startLean serves c with the lean loop on a goroutine of its own, owned
// by the listener's leanSet; c is closed when the set is draining.
func (l *listener) startLean(c net.Conn) {
	l.startLeanIn(&leanConn{}, c)
}

// startLeanIn is startLean with lc, new, as the connection's storage
// (acceptRawLoop's holds c too).
func (l *listener) startLeanIn(lc *leanConn, c net.Conn) {
	lc.l, lc.c = l, c
	lc.ctxMem.init()
	lc.ctx = &lc.ctxMem
	if !l.lean.add(lc) {
		lc.ctx.Cancel()
		_ = c.Close()
		return
	}
	go l.serveLean(lc)
}

// serveLean serves lc's connection; it hands it to the HTTP/2 server when
// it starts with the HTTP/2 preface.
func (l *listener) serveLean(lc *leanConn) {
	c := lc.c
	var raw syscall.RawConn
	if tc, ok := c.(*tls.Conn); ok {
		if !lc.handshake(tc) {
			lc.ctx.Cancel()
			l.lean.remove(lc)
			return
		}
	}
	if tc, ok := c.(*trackedConn); ok {
		lc.over = tc.over
		lc.tcp, _ = tc.Conn.(*net.TCPConn)
		lc.raw, _ = tc.Conn.(*rawConn)
		if sc, ok := tc.Conn.(syscall.Conn); ok {
			raw, _ = sc.SyscallConn()
		}
		if raw != nil {
			lc.socket.Init(raw)
			lc.sock = &lc.socket
			lc.pollRaw = raw
		}
	}
	lc.in.Init(c, raw)
	if lc.raw != nil {
		lc.remote, lc.local = lc.rawRemote(), lc.raw.local
	} else {
		lc.remote, lc.local = c.RemoteAddr().String(), c.LocalAddr().String()
	}
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
	if lc.raw != nil {
		lc.clientIP = lc.raw.remote.Addr()
	} else if ap, err := netip.ParseAddrPort(lc.remote); err == nil {
		lc.clientIP = ap.Addr().Unmap()
	}
	lc.w.lc = lc
	lc.run(wakeNone)
}

// rawRemote formats a raw connection's peer address ("ip:port") into
// lc's own bytes (remoteMem; a longer one, an IPv6 address with a zone,
// into an allocation of its own) and returns it as a string without a
// copy: a new connection's remote address costs no allocation. The
// bytes are never written again, so the string stays as it is; one that
// outlives lc (a log record) keeps lc's memory.
func (lc *leanConn) rawRemote() string {
	b := lc.raw.remote.AppendTo(lc.remoteMem[:0])
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// wake is why a connection's goroutine runs the loop.
type wake uint8

const (
	wakeNone  wake = iota // it was not parked
	wakeReady             // parked, and its socket became readable
	wakeEnd               // parked, and it is to close (timeout, drain, shed)
)

// run serves lc until its connection ends, is handed to the HTTP/2 server, or is
// parked (then the set owns lc until it starts run again, and the
// goroutine leaves lc alone).
func (lc *leanConn) run(w wake) {
	prefix, handOff, parked := lc.loop(w)
	if parked {
		return
	}
	lc.in.Release()
	l := lc.l
	switch {
	case handOff:
		// The HTTP/2 server waits in Go's poller.
		lc.tcpConn()
		batchHTTP2(lc.c)
		l.serveH2(&prefixConn{Conn: lc.c, prefix: prefix})
	case !lc.w.hijacked: // a hijacked connection is its hijacker's to close
		_ = lc.c.Close()
		// The request scratch goes back to its pools for the next
		// connection: one that carried a single request (Connection:
		// close) would otherwise drop it and every new connection
		// allocate its own. (A hijacked connection's handler may still
		// hold it.)
		lc.releaseIdle()
	}
	lc.ctx.Cancel()
	l.lean.remove(lc)
}

// runReady is run(wakeReady): a parked connection's socket became
// readable.
func (lc *leanConn) runReady() { lc.run(wakeReady) }

// handshake runs the TLS handshake within the header timeout. A client
// that chose HTTP/2 is handed to the HTTP/2 server at once; false means lc is done
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
		lc.l.serveH2(tc)
		return false
	}
	if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		lc.l.handOver(tc)
		return false
	}
	lc.tls = &st
	return true
}

// loop serves requests until the connection ends or leaves the loop
// (false), or is to be handed to the HTTP/2 server with prefix, the bytes already
// read (true): only an HTTP/2 connection preface is, as the first bytes of
// a cleartext connection of a listener that offers h2c. Every HTTP/1 byte
// of the connection is read here, by the strict parser.
//
// parked reports that the connection was parked: the set owns lc now.
// w says why the goroutine runs: wakeNone for a connection that was not
// parked; otherwise the loop goes on from the wait it was parked in.
func (lc *leanConn) loop(w wake) (prefix []byte, handOff, parked bool) {
	for {
		set := lc.l.cur.Load().set
		lc.send = set.send
		if lc.sock != nil {
			lc.sock.SetWriteTimeout(set.send, lc.c)
		}
		if !lc.probed && (set.readHeader <= 0 || set.idle <= 0) {
			// Without those timeouts nothing else ends the connection
			// of a client that vanished (see listenConfig).
			lc.probed = true
			keepAliveOn(lc.c)
		}
		if w != wakeNone || len(lc.in.Buffered()) == 0 {
			ok, parked := lc.await(set, w)
			if !ok {
				return nil, false, parked
			}
		}
		w = wakeNone
		n, err := lc.scan(set.maxHeader, set.readHeader)
		if errors.Is(err, h1.ErrHandOff) {
			if !lc.served && lc.tls == nil && set.h2c {
				return lc.handOffBytes(), true, false
			}
			err = &h1.Error{Status: http.StatusHTTPVersionNotSupported, Reason: "HTTP/2 preface without h2c"}
		}
		if err != nil {
			var he *h1.Error
			if errors.As(err, &he) {
				lc.refuse(he)
			}
			return nil, false, false // timeout, EOF, or refused
		}
		start := time.Now()
		head := string(lc.in.Buffered()[:n])
		lc.req.Reset()
		if lc.req.Header.Fields == nil {
			lc.req.Header.Fields = lc.takeScratch().fields[:0]
		}
		err = h1.Parse(head, &lc.req)
		lc.in.Discard(n)
		if err != nil {
			lc.refuse(err.(*h1.Error))
			return nil, false, false
		}
		lc.clearReadDeadline()
		lc.served = true
		if lc.req.Path == "*" {
			if !lc.options() {
				return nil, false, false
			}
			continue
		}
		if !lc.serveOne(start) {
			return nil, false, false
		}
	}
}

// await waits for the first bytes of the next request; false when the
// connection is to close, or was parked (parked). A cleartext connection
// (an idle keep-alive one, or a new one whose first request has not
// come yet) is parked when the set can take it; one not parked waits on
// its goroutine within the keep-alive timeout, or, during a drain, closes
// (one that has not had a request yet is given newConnGrace).
//
// A new connection reads before it parks: most clients send their request
// right after connecting, and a read that finds it costs less than a
// registration and a wake-up. A raw one (rawConn) that did wait on its
// goroutine would move into Go's poller for the wait.
//
// Parking needs no read first: the set's epoll instance reports bytes that
// come after the park, and the set remembers bytes that came while the
// connection was serving (an edge-triggered event is not repeated), so
// then the park tries a read instead. A woken connection tries a read
// before it waits too: an event may be for bytes an earlier read took
// already, and then the connection parks again. So does a connection
// whose last read filled its buffer: the socket may hold more that came
// before that read, for which no event comes. Bytes read ahead of the
// previous request (a pipelining client) are never parked: the loop only
// gets here with none buffered.
func (lc *leanConn) await(set serverSettings, w wake) (ok, parked bool) {
	if w == wakeEnd {
		return false, false
	}
	// A read that filled its buffer may have left bytes in the socket that
	// came before it: edge-triggered, the set reports no event for them,
	// so they are read before a park. (Only a connection that can park
	// reads its socket directly; over TLS a full read is nothing to act on.)
	try := w == wakeReady || lc.pollRaw != nil && (lc.in.MayHoldMore() || !lc.served)
	var err error
	for {
		if try {
			// A read that does not wait needs no deadline, only none in
			// the past (a watcher of the last request may have left one).
			lc.clearReadDeadline()
			var got bool
			got, err = lc.in.TryFill()
			if got || err != nil {
				break
			}
		}
		lc.in.Release()
		lc.releaseIdle()
		wait := leanIdle
		if !lc.served {
			wait = leanNew
		}
		// A woken connection that found nothing keeps its keep-alive
		// deadline.
		switch lc.l.lean.park(lc, wait, set.idle, w == wakeReady) {
		case parkedNow:
			return false, true
		case parkRead:
			try = true
			continue
		case parkDraining:
			if wait == leanIdle {
				return false, false
			}
			lc.setReadDeadline(time.Now().Add(newConnGrace))
		case parkNot:
			lc.setReadDeadline(deadline(set.idle))
		}
		err = lc.in.Fill()
		break
	}
	if (!lc.l.lean.setState(lc, leanActive) && lc.served) || err != nil {
		return false, false
	}
	return true, false
}

// setReadDeadline sets the connection's read deadline, and notes that one
// may be set.
func (lc *leanConn) setReadDeadline(t time.Time) {
	_ = lc.c.SetReadDeadline(t)
	lc.readDL.Store(true)
}

// clearReadDeadline removes the connection's read deadline if one may be
// set. A request whose head came whole with the read that woke the loop
// sets none and clears none: the two runtime timer updates it saves are a
// measurable part of a small keep-alive request.
func (lc *leanConn) clearReadDeadline() {
	if lc.readDL.Load() {
		lc.readDL.Store(false)
		_ = lc.c.SetReadDeadline(time.Time{})
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

// leanScratch is a connection's per-request scratch: the parsed fields,
// the response header map and the request's state for serve.
// scratchPool holds those of connections that went idle or ended, so an
// idle connection keeps none; they go together, one Get and one Put per
// connection (not a statePool Get and Put per request besides).
type leanScratch struct {
	fields []h1.Field
	header http.Header
	// vals holds the header's values (leanWriter.HeaderValues); its
	// length is the slots handed out for the response.
	vals []string
	st   reqState
}

var scratchPool = sync.Pool{New: func() any {
	return &leanScratch{fields: make([]h1.Field, 0, 16), header: make(http.Header, 8)}
}}

// takeScratch returns lc's request scratch, from the pool if lc holds
// none.
func (lc *leanConn) takeScratch() *leanScratch {
	if lc.scratch == nil {
		lc.scratch = scratchPool.Get().(*leanScratch)
	}
	return lc.scratch
}

// releaseIdle gives the request scratch back while the connection waits
// for its next request, or when it ends.
func (lc *leanConn) releaseIdle() {
	sc := lc.scratch
	if sc == nil {
		return
	}
	if f := lc.req.Header.Fields; f != nil {
		clear(f[:cap(f)])
		lc.req = h1.Request{}
		sc.fields = f[:0] // the parser may have grown it
	}
	clear(sc.header)
	clear(sc.vals)
	sc.vals = sc.vals[:0]
	lc.w.header = nil
	lc.scratch = nil
	scratchPool.Put(sc)
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
// head is refused with 431. The header timeout (readHeader) starts with
// the first read that waits: a head that is buffered whole needs none.
func (lc *leanConn) scan(limit int, readHeader time.Duration) (int, error) {
	from := 0
	timed := false
	for {
		buf := lc.in.Buffered()
		n, err := h1.ScanHead(buf, from)
		if n > 0 || err != nil {
			return n, err
		}
		from = len(buf)
		if !timed {
			timed = true
			lc.setReadDeadline(deadline(readHeader))
		}
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
// and what followed it) for the HTTP/2 server to read first.
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
	if lc.tcpConn() == nil || lc.tcp.CloseWrite() != nil {
		return
	}
	_ = lc.tcp.SetReadDeadline(time.Now().Add(lingerFor))
	_, _ = io.CopyN(io.Discard, lc.tcp, lingerBytes)
}

// tcpConn returns the TCP connection under c (see tcp), converting a raw
// one first; nil if there is none (or the conversion failed). Called by
// the connection's goroutine.
func (lc *leanConn) tcpConn() *net.TCPConn {
	if lc.tcp == nil && lc.raw != nil {
		lc.tcp, _ = lc.raw.tcpConn()
	}
	return lc.tcp
}

// serveOne runs one parsed request through serve. It reports whether the
// connection may carry another request.
func (lc *leanConn) serveOne(start time.Time) (keep bool) {
	st := &lc.takeScratch().st
	lc.fill(&st.req)
	st.ctx = lc.ctx
	if st.req.ContentLength != 0 {
		st.src, st.ctl = &lc.body, &lc.w
	}
	lc.body.Reset(&lc.in, lc.req.ContentLength)
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
		if errors.Is(lc.w.err, os.ErrDeadlineExceeded) {
			lc.l.srv.log.Info("send timeout: the client took no response bytes in time; connection closed",
				"listener", lc.l.key, "remote", lc.remote, "timeout", lc.send)
		}
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				lc.l.srv.log.Error("panic serving request", "remote", lc.remote, "panic", v, "stack", string(debug.Stack()))
			}
			keep = false
			lc.w.abandon()
			// Neither st nor the request scratch is reused: a panicking
			// handler may still hold them.
			lc.req.Header.Fields, lc.scratch, lc.w.header = nil, nil, nil
			return
		}
		st.reset()
	}()
	lc.l.srv.serve(lc.l, st, &lc.w, serveOpts{start: start, over: lc.over, fin: &lc.w})
	if lc.w.hijacked {
		return false // the connection left the loop with its hijacker
	}
	// serve ended the answer before its report (respWriter.finishAnswer)
	// unless it answered without one (no site, ACME): then it ends here.
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
	if s.draining.Load() {
		return false
	}
	lc.wait.v = lc
	lc.next = s.conns
	if s.conns != nil {
		s.conns.prev = lc
	}
	s.conns = lc
	s.nconns++
	s.wg.Add(1)
	if s.stop == nil {
		s.stop = make(chan struct{})
		s.wg.Add(1)
		go s.watchLoop(s.stop)
		p, err := newIdlePoller()
		if err != nil {
			// Idle connections wait on their goroutines, as they would
			// without the set.
			lc.l.srv.log.Warn("idle keep-alive connections keep their goroutines", "listener", lc.l.key, "err", err)
		} else {
			s.poll = p
			s.wg.Add(1)
			go s.pollLoop(p, lc.l)
		}
	}
	return true
}

// pollLoop runs the epoll instance: it resumes each parked connection
// whose socket is readable. It ends when drain closes the instance.
func (s *leanSet) pollLoop(p *idlePoller, l *listener) {
	defer s.wg.Done()
	err := p.run(s.ready)
	if s.isDraining() {
		return
	}
	// Not a close: no more connections are parked, and the parked ones,
	// which nothing would wake, close (their clients reconnect, as after
	// any keep-alive timeout).
	l.srv.log.Error("idle connection poller ended", "listener", l.key, "err", err)
	s.mu.Lock()
	if s.poll == p {
		s.poll = nil
	}
	for _, lc := range s.registered {
		if lc.park == parkParked {
			s.unpark(lc)
			go lc.run(wakeEnd)
		}
	}
	s.mu.Unlock()
	p.close()
}

// parkResult is what park did.
type parkResult uint8

const (
	parkNot      parkResult = iota // not parked: wait on the goroutine
	parkedNow                      // parked: the set owns lc
	parkRead                       // not parked: bytes came meanwhile, read them
	parkDraining                   // not parked: the set is draining
)

// park records that lc waits for a request (state st: leanIdle, or
// leanNew for the first one). lc is parked when the set has an epoll
// instance and lc a socket: its socket is registered there the first
// time, and then the set owns lc, until idle passes (the keep-alive
// timeout, which also bounds the wait for a first request; <= 0: none)
// or an event comes; keep leaves lc's deadline as it was (a woken
// connection that found nothing to read).
// An event that came since lc's last park is not waited for: park
// returns parkRead.
func (s *leanSet) park(lc *leanConn, st leanState, idle time.Duration, keep bool) parkResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		s.wait(lc, st)
		return parkDraining
	}
	if s.poll == nil || lc.pollRaw == nil {
		s.wait(lc, st)
		return parkNot
	}
	if lc.park == parkWoken {
		// Bytes came: lc is about to read them, not waiting.
		s.setStateLocked(lc, st)
		lc.park = parkNone
		return parkRead
	}
	s.wait(lc, st)
	if lc.token == 0 {
		// Bytes already in the socket raise an event at once.
		s.lastToken++
		var err error
		if lc.raw != nil {
			err = lc.raw.registerIn(s.poll, s.lastToken)
		} else {
			err = s.poll.register(lc.pollRaw, s.lastToken)
		}
		if err != nil {
			lc.l.srv.log.Debug("park idle connection", "listener", lc.l.key, "remote", lc.remote, "err", err)
			return parkNot
		}
		lc.token = s.lastToken
		lc.resume = lc.runReady
		if s.registered == nil {
			s.registered = map[uint64]*leanConn{}
		}
		s.registered[lc.token] = lc
	}
	lc.park = parkParked
	if !keep {
		lc.expires = time.Time{}
		if idle > 0 {
			// The monotonic clock alone (one clock read, where time.Now
			// takes two): sweep compares expires with its ticker's
			// times, which carry a monotonic reading, by that reading.
			lc.expires = monoclock.Time(monoclock.Now() + idle)
		}
	}
	return parkedNow
}

// ready resumes the parked connections that had an event, and marks the
// others that are still registered (those serving) woken; a token whose
// connection ended is skipped.
func (s *leanSet) ready(tokens []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		lc := s.registered[t]
		switch {
		case lc == nil:
		case lc.park == parkParked:
			s.unpark(lc)
			go lc.resume()
		default:
			lc.park = parkWoken
		}
	}
}

// unpark ends lc's parking, and takes it out of its waiting queue (an
// event came, or it is to end); the caller starts its goroutine. Called
// with s.mu held.
func (s *leanSet) unpark(lc *leanConn) {
	lc.park = parkNone
	lc.wait.unqueue()
}

// setStateLocked records lc's state, out of any waiting queue. Called
// with s.mu held.
func (s *leanSet) setStateLocked(lc *leanConn, st leanState) {
	lc.wait.unqueue()
	lc.state = st
}

// wait records that lc waits for a request in state st (leanIdle or
// leanNew): it goes to the tail of st's queue, unless it is in it
// already. (A wake-up takes lc out, see unpark: one that found nothing
// to read parks again at the tail, a moment after its last request.)
// Called with s.mu held.
func (s *leanSet) wait(lc *leanConn, st leanState) {
	if lc.state != st {
		lc.wait.unqueue()
		lc.state = st
	}
	if lc.wait.q == nil {
		s.waitq[st-leanIdle].push(&lc.wait)
	}
}

// sweep closes the parked connections whose keep-alive timeout passed.
// Called by watchLoop with s.mu held.
func (s *leanSet) sweep(now time.Time) {
	for _, lc := range s.registered {
		if lc.park == parkParked && !lc.expires.IsZero() && !now.Before(lc.expires) {
			s.unpark(lc)
			go lc.run(wakeEnd)
		}
	}
}

// remove ends lc's registration, once: when its goroutine is done, or
// earlier when its connection was hijacked. A hijacked connection is the
// hijack set's (closed by shutdown), and neither a drain nor a shutdown
// waits for its handler, as with net/http's hijacked connections; the
// handler ends when the connection is closed.
//
// A registered connection leaves the registered map; a hijacked one,
// still open, leaves the epoll instance too (a closed socket left it with
// its close), so its bytes raise no more events.
func (s *leanSet) remove(lc *leanConn) {
	s.mu.Lock()
	ok := s.conns == lc || lc.prev != nil // in the set
	if ok {
		if lc.prev != nil {
			lc.prev.next = lc.next
		} else {
			s.conns = lc.next
		}
		if lc.next != nil {
			lc.next.prev = lc.prev
		}
		lc.prev, lc.next = nil, nil
		s.nconns--
		lc.wait.unqueue()
	}
	registered := ok && lc.token != 0 && s.registered[lc.token] == lc
	if registered {
		delete(s.registered, lc.token)
	}
	poll := s.poll
	s.mu.Unlock()
	if registered && poll != nil {
		_ = poll.unregister(lc.pollRaw)
	}
	if ok {
		s.wg.Done()
	}
}

// setState records lc's state; false when the set is draining and lc
// should close instead.
func (s *leanSet) setState(lc *leanConn, st leanState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setStateLocked(lc, st)
	return !s.draining.Load()
}

// drain stops the lean connections: idle ones close now, busy ones after
// their current response, new ones (parked or not) after their first
// request if it comes within newConnGrace; when ctx ends first, every one is closed and
// its requests cancelled. It returns when all have ended.
func (s *leanSet) drain(ctx context.Context) {
	s.mu.Lock()
	s.draining.Store(true)
	if s.stop != nil {
		close(s.stop)
	}
	poll := s.poll // nothing is parked from now on
	s.poll = nil
	for _, lc := range s.registered {
		if lc.park != parkParked {
			continue
		}
		s.unpark(lc)
		if lc.state == leanNew {
			// Waiting for its first request: it waits on its goroutine
			// for newConnGrace (see await), not closed.
			go lc.resume()
			continue
		}
		_ = lc.c.Close()
		go lc.run(wakeEnd)
	}
	for lc := s.conns; lc != nil; lc = lc.next {
		switch lc.state {
		case leanIdle:
			lc.setReadDeadline(time.Now()) // ends the wait for a request
		case leanNew:
			lc.setReadDeadline(time.Now().Add(newConnGrace))
		}
	}
	s.mu.Unlock()
	if poll != nil {
		// Not under s.mu: the close waits for pollLoop's wait to return,
		// and pollLoop may be waiting for s.mu in ready.
		poll.close()
	}
	waitOrForce(ctx, &s.wg, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for lc := s.conns; lc != nil; lc = lc.next {
			_ = lc.c.Close()
			lc.ctx.Cancel()
		}
	})
}

// waitOrForce waits for wg. When ctx ends first, it calls force, which
// must end what wg counts (by closing connections), and waits again.
func waitOrForce(ctx context.Context, wg *sync.WaitGroup, force func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	force()
	<-done
}

// prefixConn is a connection handed over with bytes already read (to the
// HTTP/2 server, or to net/http when tests turn the lean loop off): Read
// returns the bytes
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
