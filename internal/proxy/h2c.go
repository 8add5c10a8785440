package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// This file forwards to an app spoken to over HTTP/2 with prior knowledge
// (Handler.H2C), what gRPC services need: trailers both ways, full-duplex
// streams, and flow control per stream instead of whole messages in
// buffers. The request gets its fields from the same rules as over
// HTTP/1.1 (appendRequestFields); the answers Gatehouse makes itself go
// through the same funnel (answerError).
//
// requestTimeout is an inactivity timeout here too: it bounds the wait
// for the response header, and then the time without progress in either
// direction (a piece of the request body read from the client, or of the
// response body from the app), each time with a fresh budget. A stream that
// keeps sending either way is never cut by it; one silent both ways for
// requestTimeout is reset. A grpc-timeout header is passed on to the app
// and also bounds the stream here: when it expires the app's stream is
// cancelled and the client is told DEADLINE_EXCEEDED.
//
// A WebSocket, from an HTTP/1.1 upgrade or an extended CONNECT, goes to
// the app as an extended CONNECT stream on a connection of its own
// (h2tunnel.go), spoken by the same client (h2client.go): a tunnel lasts
// as long as the WebSocket, and it needs the app's first SETTINGS before
// its stream is opened.

// h2Pool holds the HTTP/2 connections to the app processes (h2client.go),
// a few per process address: a request takes a stream on the first
// connection that has one free under the app's
// SETTINGS_MAX_CONCURRENT_STREAMS, and a new connection is dialled only
// when none has (one dial at a time per address). Connections that
// received GOAWAY or failed are dropped.
type h2Pool struct {
	dialTimeout time.Duration
	win         h2Windows
	// dialed, when non-nil, is called with each connection get dialled,
	// before get hands it out (tests: to let its read loop run first).
	dialed func(cc *h2Conn)

	mu    sync.Mutex // protects conns
	conns map[string]*h2Conns
}

// h2Conns are the connections to one process address.
type h2Conns struct {
	list []*h2Conn
	// dialing is non-nil while a connection is being dialled; it is
	// closed when the dial ends.
	dialing chan struct{}
}

func newH2Pool(timeout time.Duration) *h2Pool {
	dialTimeout := defaultDialTimeout
	if timeout > 0 {
		dialTimeout = timeout
	}
	return &h2Pool{dialTimeout: dialTimeout, win: defaultH2Windows, conns: map[string]*h2Conns{}}
}

// get returns a connection to addr with a stream reserved for one request
// (h2Conn.open uses the reservation).
func (p *h2Pool) get(ctx context.Context, addr string) (*h2Conn, error) {
	for {
		p.mu.Lock()
		cs := p.conns[addr]
		if cs == nil {
			cs = &h2Conns{}
			p.conns[addr] = cs
		}
		if cc := cs.reserve(); cc != nil {
			p.mu.Unlock()
			return cc, nil
		}
		if wait := cs.dialing; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		cs.dialing = done
		p.sweepLocked(addr)
		p.mu.Unlock()

		cc, err := dialH2(ctx, addr, p.dialTimeout, p.win)
		if err == nil && p.dialed != nil {
			p.dialed(cc)
		}

		p.mu.Lock()
		cs.dialing = nil
		close(done)
		if err == nil {
			cs.list = append(cs.list, cc)
		}
		p.mu.Unlock()
		// cc comes with its stream reserved, even when it failed or was
		// refused already: this request's open reports why, as it would
		// a moment later, where dialling again would go on as long as
		// the app fails each new connection at once.
		return cc, err
	}
}

// reserve drops the failed connections and those that received GOAWAY,
// and reserves a stream on the first that has one free; nil if none has.
func (cs *h2Conns) reserve() *h2Conn {
	live := cs.list[:0]
	var pick *h2Conn
	for _, cc := range cs.list {
		if cc.gone() {
			continue
		}
		live = append(live, cc)
		if pick == nil && cc.reserve() {
			pick = cc
		}
	}
	clear(cs.list[len(live):])
	cs.list = live
	return pick
}

// sweepLocked forgets the addresses other than keep whose connections are
// all gone (processes that exited). It runs before each dial, which is
// rare: once per new process, or when a process's connections are full.
func (p *h2Pool) sweepLocked(keep string) {
	for addr, cs := range p.conns {
		if addr == keep || cs.dialing != nil {
			continue
		}
		n := 0
		for _, cc := range cs.list {
			if !cc.gone() {
				n++
			}
		}
		if n == 0 {
			delete(p.conns, addr)
		}
	}
}

// closeIdle closes the connections without streams; the others take no
// new streams and close after their last one.
func (p *h2Pool) closeIdle() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*h2Conns{}
	p.mu.Unlock()
	for _, cs := range conns {
		for _, cc := range cs.list {
			cc.closeWhenIdle()
		}
	}
}

var (
	// errAppTimeout is requestTimeout expiring on an h2c stream.
	errAppTimeout = fmt.Errorf("no progress within requestTimeout: %w", os.ErrDeadlineExceeded)
	// errGRPCDeadline is the client's grpc-timeout expiring.
	errGRPCDeadline = fmt.Errorf("grpc-timeout expired: %w", context.DeadlineExceeded)
	// errBodyClosed is a read of a request body view after its stream ended.
	errBodyClosed = errors.New("request body: stream ended")
)

// h2Exchange is one request forwarded over h2c.
type h2Exchange struct {
	ex   *exchange
	ctx  context.Context // ex.ctx, cancelled by requestTimeout and grpc-timeout too
	idle *idleTimer      // nil without requestTimeout or grpc-timeout
	body *replayBody
	grpc bool
	web  webMode // a gRPC-Web request being translated (Handler.GRPCWeb)
}

// forwardH2 is forward for an app spoken to over h2c: send the request as
// an HTTP/2 stream to ex.lease's process, copy the response (and its
// trailers) to ex.w. A request the app did not process (refused
// connection, a connection on which the app sent nothing, REFUSED_STREAM, a
// stream above a GOAWAY's last stream id) is
// sent once more, to a process acquired again, whatever its method, as long
// as the part of its body already read can be sent again (up to
// replayMax). Safe requests whose process died under them are retried as
// over HTTP/1.1 (RetryIdempotent).
func (h *Handler) forwardH2(ex *exchange) {
	ct := ex.in.get("Content-Type")
	x := h2Exchange{ex: ex, grpc: pages.IsGRPC(ct)}
	if h.GRPCWeb {
		x.web = grpcWebMode(ct)
	}
	ctx, cancel := context.WithCancelCause(ex.ctx)
	defer cancel(nil)
	x.ctx = ctx
	// One timer ends the exchange for both requestTimeout and grpc-timeout.
	var deadline time.Time
	if d, ok := grpcTimeout(ex.in.get("Grpc-Timeout")); ok {
		if d <= 0 {
			cancel(errGRPCDeadline)
		}
		deadline = time.Now().Add(d)
	}
	if h.RequestTimeout > 0 || !deadline.IsZero() {
		x.idle = newIdleTimer(h.RequestTimeout, deadline, cancel, h.afterFunc)
		defer x.idle.stop()
	}
	if ex.body != nil {
		src := ex.body
		if x.web != webNone {
			src = webBody(src, x.web)
			if x.web == webText {
				ex.in.contentLength = -1 // decoding changes the length
			}
		}
		x.body = &replayBody{src: src, trailer: ex.in.trailer, idle: x.idle, w: ex.w}
		defer x.body.finish(ex.w)
	}

	st, err := x.roundTrip()
	if err != nil {
		if st = x.failed(err); st == nil {
			return
		}
	}
	pipeline.SetUpstream(ex.w, ex.lease.PID, headArrived())
	x.respond(st)
}

// failed handles a first attempt that failed with err: it sends the
// request once more where forwardH2 says so and returns that attempt's
// stream, or answers the client and returns nil. It is a function of its
// own so that its locals are not in forwardH2's stack frame, which every
// request's goroutine carries below the writes to the client: a larger
// one makes the runtime copy more handler stacks to a bigger size.
func (x *h2Exchange) failed(err error) *h2Stream {
	ex := x.ex
	h := ex.h
	var st *h2Stream
	if ex.ctx.Err() == nil && (notProcessed(err) && x.body.replayable() ||
		h.RetryIdempotent && ex.retryable(err)) {
		var ue *unheardError
		refused := errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ue)
		if !h.retryOnNewProcess(ex, err, refused) {
			return nil
		}
		if st, err = x.roundTrip(); err == nil {
			return st
		}
	}
	pipeline.SetUpstream(ex.w, ex.lease.PID, time.Time{})
	h.fail(ex, &BackendError{PID: ex.lease.PID, Err: x.cause(err)}, ex.lease.PID)
	return nil
}

// cause returns why ctx ended in place of err, the h2c client's report of
// it: requestTimeout, grpc-timeout, or the client gone. It is
// errGRPCDeadline also when the grpc-timeout expired but its timer has
// not ended ctx yet (deadlinePassed).
func (x *h2Exchange) cause(err error) error {
	if x.ctx.Err() != nil {
		if c := context.Cause(x.ctx); c != nil {
			return c
		}
	}
	if x.deadlinePassed() {
		return errGRPCDeadline
	}
	return err
}

// deadlinePassed reports whether the client's grpc-timeout expired: ctx
// ended for it, or its time is past though the timer that ends ctx has
// not run yet. The app holds the stream to the same grpc-timeout (it was
// passed on) and gets it later, so when its clock runs out ours already
// has: grpc-go resets the stream (RST_STREAM CANCEL) at once, and on a
// loaded machine that reset can come in before our timer's goroutine
// runs. The failure is then the client's deadline, not the app's.
func (x *h2Exchange) deadlinePassed() bool {
	return errors.Is(context.Cause(x.ctx), errGRPCDeadline) || x.idle.deadlinePassed(time.Now())
}

// roundTrip sends the request to ex.lease's process and returns its
// stream once the response header arrived.
func (x *h2Exchange) roundTrip() (*h2Stream, error) {
	ex := x.ex
	x.idle.touch()
	cc, err := ex.h.h2.get(x.ctx, ex.lease.Addr)
	if err != nil {
		return nil, err
	}
	st, err := cc.open(x.ctx, x.newRequest(ex.lease.Addr, ex.lease.Token))
	if err == nil {
		if err = st.awaitHeader(x.ctx); err != nil {
			st.Close()
		}
	}
	if err != nil && !cc.heard.Load() && x.ctx.Err() == nil {
		err = &unheardError{err}
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// unheardError is the failure of a request on a connection on which the app
// sent nothing, not even its SETTINGS (h2Conn.heard): the request was not
// processed.
type unheardError struct{ err error }

func (e *unheardError) Error() string {
	return "app connection failed before the app sent anything: " + e.err.Error()
}

func (e *unheardError) Unwrap() error { return e.err }

// h2Fields collects the request fields appendRequestFields forwards.
type h2Fields [][2]string

func (f *h2Fields) add(name, value string) { *f = append(*f, [2]string{name, value}) }

// newRequest builds the request for the app at addr.
func (x *h2Exchange) newRequest(addr, token string) *h2Request {
	in := &x.ex.in
	fields := make(h2Fields, 0, 16)
	appendRequestFields(&x.ex.rf, &fields, in, token)
	if x.web != webNone {
		webRequest(&fields, x.web)
	}
	req := &h2Request{method: in.method, authority: in.host, path: in.path, fields: fields}
	if req.authority == "" {
		req.authority = addr
	}
	if in.query != "" {
		req.path += "?" + in.query
	}
	if x.body != nil {
		req.body = x.body.view()
		req.contentLength = in.contentLength
		if t := announcedTrailer(in.trailer); t != nil {
			req.trailer = t
			x.body.out = t
		}
	}
	return req
}

// announcedTrailer returns the request trailers that may reach the app
// (trailerFieldAllowed), names only; their values are filled in when the
// body ends. nil when there are none.
func announcedTrailer(t pipeline.Header) http.Header {
	if t == nil {
		return nil
	}
	var out http.Header
	name := func(k string) {
		if trailerFieldAllowed(k) {
			if out == nil {
				out = http.Header{}
			}
			out[http.CanonicalHeaderKey(k)] = nil
		}
	}
	if h, ok := t.(pipeline.HTTPHeader); ok {
		for k := range h {
			name(k)
		}
	} else {
		t.Range(func(k, _ string) bool { name(k); return true })
	}
	return out
}

// respond copies the app's response to the client: the header fields by
// the response rules, the body as it arrives (flushed after every piece, so
// a stream's messages go out at once), then the trailers. A trailers-only
// response (no body, as gRPC answers errors) stays one header section. A
// failure after the header aborts the client's stream, except that an
// expired grpc-timeout ends it with grpc-status DEADLINE_EXCEEDED.
func (x *h2Exchange) respond(st *h2Stream) {
	ex := x.ex
	defer st.Close()
	x.copyHeader(st)
	flusher, _ := ex.w.(http.Flusher)
	ex.w.WriteHeader(st.Status())
	if st.contentLength != 0 && flusher != nil {
		flusher.Flush()
	}
	if err := x.copyBody(st, flusher); err != nil {
		x.bodyFailed(st, err, flusher)
		return
	}
	if x.web != webNone && st.Header().Get("Grpc-Status") != "" {
		return // trailers-only: the status went in the header section
	}
	x.endTrailers(st.Trailer(), flusher)
}

// copyHeader puts the app's response header fields that the response
// rules pass into the client's response header. It and bodyFailed are
// functions of their own so that their locals are not in respond's stack
// frame, which every request's goroutine carries below the writes to the
// client: a larger one makes the runtime copy more HTTP/2 handler stacks
// to a bigger size.
func (x *h2Exchange) copyHeader(st *h2Stream) {
	h := x.ex.w.Header()
	for k, vs := range st.Header() {
		if !responseFieldRule(k) {
			continue
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, vs...)
		} else {
			h[k] = vs
		}
	}
	if x.web != webNone {
		h["Content-Type"] = []string{webContentType(st.Header().Get("Content-Type"), x.web)}
		delete(h, "Content-Length") // the body gains the trailer frame
	}
}

// bodyFailed ends a response whose body could not be copied (err): an
// expired grpc-timeout with grpc-status DEADLINE_EXCEEDED, anything else
// by aborting the client's stream.
func (x *h2Exchange) bodyFailed(st *h2Stream, err error, flusher http.Flusher) {
	if x.grpc && x.deadlinePassed() && st.Trailer().Get("Grpc-Status") == "" {
		t := http.Header{"Grpc-Status": {strconv.Itoa(pages.GRPCDeadlineExceeded)}, "Grpc-Message": {"Deadline Exceeded"}}
		x.endTrailers(t, flusher)
		return
	}
	ex := x.ex
	var ce *copyError
	if errors.As(err, &ce) && !ce.client && ex.ctx.Err() == nil {
		ex.h.log.Warn("app response body cut off", "pid", ex.lease.PID,
			"method", ex.in.method, "path", ex.path(), "err", err)
	}
	panic(http.ErrAbortHandler)
}

// endTrailers sends the response trailers t: as HTTP trailers, or, to a
// gRPC-Web client, as the body's last frame.
func (x *h2Exchange) endTrailers(t http.Header, flusher http.Flusher) {
	if x.web != webNone {
		var scratch [128]byte
		_, _ = x.ex.w.Write(webEncode(webTrailerFrame(t), x.web, scratch[:]))
		if flusher != nil {
			flusher.Flush()
		}
		return
	}
	h := x.ex.w.Header()
	for k, vs := range t {
		if k = http.CanonicalHeaderKey(k); trailerAllowed(k) {
			pk, ok := prefixedTrailer[k]
			if !ok {
				pk = http.TrailerPrefix + k
			}
			h[pk] = vs
		}
	}
}

// prefixedTrailer maps the trailer names gRPC answers carry to their
// names with http.TrailerPrefix, so that passing them on allocates
// nothing.
var prefixedTrailer = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
		m[k] = http.TrailerPrefix + k
	}
	return m
}()

// copyBody copies the response body to the client, flushing after each
// piece.
func (x *h2Exchange) copyBody(body io.Reader, flusher http.Flusher) error {
	bufp := buffers.Get().(*[bufferSize]byte)
	defer buffers.Put(bufp)
	var encoded []byte // the text variant's base64, reused
	for {
		n, err := body.Read(bufp[:])
		if n > 0 {
			x.idle.touch()
			out := bufp[:n]
			if x.web == webText {
				encoded = webEncode(out, x.web, encoded)
				out = encoded
			}
			if _, werr := x.ex.w.Write(out); werr != nil {
				return &copyError{err: werr, client: true}
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &copyError{err: x.cause(err)}
		}
	}
}

// replayMax is how much of a request body is kept so that a request the
// app did not process can be sent again: a gRPC unary call or a small form
// fits.
const replayMax = 64 << 10

// replayBody is an h2c request's body, read from the client once and
// handed to each attempt through a view. It keeps what it read, up to
// replayMax, so a second attempt can send it again. The client's body is
// read by one goroutine at a time (read): the stream's body goroutine of
// the view that needs more reads it itself; a view whose piece another
// view is reading waits for it or for its own Close. An attempt that ends
// does not cut off a read: what it brings goes to the next attempt.
type replayBody struct {
	src     io.Reader
	trailer pipeline.Header // the client's trailers, filled once src is at EOF
	out     http.Header     // the trailers sent to the app (names announced)
	idle    *idleTimer
	w       http.ResponseWriter // the client's: a read of src is cut off through it

	mu   sync.Mutex // protects the fields below
	kept []byte     // what src gave so far, while it fits in replayMax
	lost bool       // more than replayMax was read: no replay
	n    int        // how much src gave so far
	// last is src's last piece, at offset n-len(last); read by views only
	// once kept is lost. It aliases buf.
	last []byte
	buf  *[bufferSize]byte // read's buffer, from buffers
	eof  bool
	err  error // src's error other than EOF
	// reading: a read of src runs. wake, when not nil, is closed when it
	// ends or a view closes; views waiting for either make it.
	reading bool
	wake    chan struct{}
	// ended: the exchange is over; src must not be read any more.
	ended bool
}

// errBodyLost is a view that fell behind a body no longer kept.
var errBodyLost = errors.New("request body: no longer kept for a replay")

// view returns a reader over the body from its start.
func (b *replayBody) view() *bodyView { return &bodyView{b: b} }

// replayable reports whether the whole body read so far can be sent
// again. A nil body is.
func (b *replayBody) replayable() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.lost && b.err == nil
}

// finish makes sure no read of the client's body is still running when the
// exchange ends: one blocked on a silent client is cut off by a read
// deadline on w, where the writer has one.
// After it, reads return errBodyClosed.
func (b *replayBody) finish(w http.ResponseWriter) {
	b.mu.Lock()
	b.ended = true
	cut := false
	for b.reading {
		wait := b.wakeLocked()
		b.mu.Unlock()
		if !cut {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			cut = true
		}
		<-wait
		b.mu.Lock()
	}
	b.mu.Unlock()
	if b.buf != nil {
		buffers.Put(b.buf)
		b.buf, b.last = nil, nil
	}
}

// wakeLocked returns the channel closed when the running read ends or a
// view closes. Called with mu held.
func (b *replayBody) wakeLocked() chan struct{} {
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	return b.wake
}

// wakeAllLocked wakes the waits for b.wake. Called with mu held.
func (b *replayBody) wakeAllLocked() {
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

// read reads one piece of src (b.reading was set for it) and wakes the
// views waiting for it.
func (b *replayBody) read() {
	if b.buf == nil {
		b.buf = buffers.Get().(*[bufferSize]byte)
	}
	n, err := b.src.Read(b.buf[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.wakeAllLocked()
	if n > 0 {
		b.idle.touch()
		b.n += n
		b.last = b.buf[:n]
		if !b.lost {
			if len(b.kept)+n <= replayMax {
				b.kept = append(b.kept, b.last...)
			} else {
				b.lost, b.kept = true, nil
			}
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
		b.fillTrailers()
	case err != nil:
		b.err = &clientBodyError{err}
	}
}

// bodyView is one attempt's reader of a replayBody.
type bodyView struct {
	b      *replayBody
	pos    int
	closed bool // Close was called; protected by b.mu
}

func (v *bodyView) Read(p []byte) (int, error) {
	b := v.b
	for {
		b.mu.Lock()
		if v.closed || b.ended {
			b.mu.Unlock()
			return 0, errBodyClosed
		}
		if v.pos < b.n {
			var n int
			switch start := b.n - len(b.last); {
			case !b.lost:
				n = copy(p, b.kept[v.pos:])
			case v.pos >= start:
				n = copy(p, b.last[v.pos-start:])
			default:
				b.mu.Unlock()
				return 0, errBodyLost
			}
			v.pos += n
			b.mu.Unlock()
			return n, nil
		}
		switch {
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		case b.err != nil:
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
		if !b.reading {
			// This goroutine reads the next piece; a Close meanwhile
			// takes effect when the read returns, which finish bounds.
			b.reading = true
			b.mu.Unlock()
			b.read()
			continue
		}
		// Another view's read runs: wait for it, or for a Close.
		wait := b.wakeLocked()
		b.mu.Unlock()
		<-wait
	}
}

// Close ends the view: its stream is done with it (the app's connection
// failed, the app reset or ended the stream, or the exchange is over). A
// Read waiting for another view's read of the client's body returns at
// once; a read of its own returns when the client's body gives the piece
// or finish cuts it off, and what it brings is kept for a next attempt.
func (v *bodyView) Close() error {
	b := v.b
	b.mu.Lock()
	v.closed = true
	b.wakeAllLocked() // the other views waiting go back to their wait
	b.mu.Unlock()
	return nil
}

// fillTrailers copies the values of the client's trailers announced to the
// app (b.out) once the body has ended.
func (b *replayBody) fillTrailers() {
	if b.out == nil || b.trailer == nil {
		return
	}
	for k := range b.out {
		var vs []string
		b.trailer.Values(k, func(v string) bool {
			if h1.ValidFieldValue(v) {
				vs = append(vs, v)
			}
			return true
		})
		if len(vs) == 0 {
			delete(b.out, k)
		} else {
			b.out[k] = vs
		}
	}
}

// idleTimer ends an exchange: it calls fire(errAppTimeout) once nothing
// touched it for timeout (when timeout > 0), and fire(errGRPCDeadline) at
// deadline (when it is not zero), whichever comes first. Touching it is one
// atomic store; the timer re-arms itself lazily.
type idleTimer struct {
	timeout  time.Duration
	deadline time.Time
	last     atomic.Int64 // UnixNano of the last touch
	t        *time.Timer
	fire     func(cause error)
	stopped  atomic.Bool // stop was called: the timer must not re-arm
}

// newIdleTimer starts an idleTimer. afterFunc starts its timer; nil means
// time.AfterFunc.
func newIdleTimer(timeout time.Duration, deadline time.Time, fire func(cause error),
	afterFunc func(time.Duration, func()) *time.Timer) *idleTimer {
	it := &idleTimer{timeout: timeout, deadline: deadline, fire: fire}
	now := time.Now()
	it.last.Store(now.UnixNano())
	if afterFunc == nil {
		afterFunc = time.AfterFunc
	}
	it.t = afterFunc(it.next(now, 0), it.check)
	return it
}

// next is the wait until the timer must look again, idle having passed
// since the last touch.
func (it *idleTimer) next(now time.Time, idle time.Duration) time.Duration {
	next := time.Duration(1<<63 - 1)
	if it.timeout > 0 {
		next = it.timeout - idle
	}
	if !it.deadline.IsZero() {
		next = min(next, it.deadline.Sub(now))
	}
	return next
}

// touch records progress. A nil idleTimer does nothing.
func (it *idleTimer) touch() {
	if it != nil {
		it.last.Store(time.Now().UnixNano())
	}
}

func (it *idleTimer) check() {
	if it.stopped.Load() {
		return
	}
	now := time.Now()
	if it.deadlinePassed(now) {
		it.fire(errGRPCDeadline)
		return
	}
	idle := now.Sub(time.Unix(0, it.last.Load()))
	if it.timeout > 0 && idle >= it.timeout {
		it.fire(errAppTimeout)
		return
	}
	it.t.Reset(it.next(now, idle))
}

// deadlinePassed reports whether now is at or past the deadline; false
// for a nil idleTimer or a zero deadline.
func (it *idleTimer) deadlinePassed(now time.Time) bool {
	return it != nil && !it.deadline.IsZero() && !now.Before(it.deadline)
}

func (it *idleTimer) stop() {
	it.stopped.Store(true)
	it.t.Stop()
}

// notProcessed reports whether the app certainly did not process the
// request, so it may be sent again whatever its method (RFC 9113 §8.7):
// the connection was refused, the connection failed before the app sent
// anything on it (unheardError), the stream was refused (REFUSED_STREAM),
// or it was above the last stream id of the app's GOAWAY
// (h2NotProcessedError).
func notProcessed(err error) bool {
	var ue *unheardError
	var np *h2NotProcessedError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ue) || errors.As(err, &np)
}

// grpcTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (H, M, S, m, u, n).
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}
