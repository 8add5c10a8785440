package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/monoclock"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// exchange is one forwarded request on the lean client: the request is
// written and the response read on the handler's goroutine, over a pooled
// keep-alive connection; a request body is sent by one body-writer
// goroutine the exchange owns and waits for. Exchanges are pooled.
type exchange struct {
	h   *Handler
	ctx context.Context
	in  inbound
	// body is the request body, nil when there is none.
	body io.Reader
	// stream is the client's side of an extended CONNECT translated to a
	// WebSocket upgrade (its request body), nil otherwise.
	stream  io.Reader
	w       http.ResponseWriter
	flusher http.Flusher
	dirty   bool // written to w since the last flush

	lease *upstream.Lease // the current lease; replaced on retry
	conn  *appConn
	stop  func() bool // unregisters the client-disconnect callback

	// The body writer's state, reset per attempt.
	bodyDone  chan error    // receives the body writer's result
	cont      chan struct{} // closed when the app said 100 Continue
	stopBody  chan struct{} // closed when the body must not be sent
	contDone  bool
	stopDone  bool
	bodyStart bool // the body writer has started

	head    []byte // request head, then response head scratch
	hw      headWriter
	rf      requestFields
	bodyErr error // the body writer's result
	res     response
	trailer response // the response trailer's fields
	// br is the exchange's response reader, made at its first HTTP/1.1
	// request and kept with it in the pool: the connection it reads from
	// holds it until the connection goes back to the pool or is closed.
	// (A reader per exchange rather than per request from a pool of its
	// own: one pool round trip less per request, as many readers.)
	br *bufio.Reader
}

var exchangePool = sync.Pool{New: func() any {
	return &exchange{head: make([]byte, 0, 1024), res: response{fields: make([]field, 0, 16)}}
}}

// reset clears ex for the pool, keeping its buffers.
func (ex *exchange) reset() {
	head, fields, tfields := ex.head[:0], ex.res.fields[:0], ex.trailer.fields[:0]
	conn, trailer := ex.res.connection[:0], ex.res.trailer[:0]
	if cap(head) > 8<<10 {
		head = make([]byte, 0, 1024)
	}
	clear(fields[:cap(fields)])
	clear(tfields[:cap(tfields)])
	clear(conn[:cap(conn)])
	clear(trailer[:cap(trailer)])
	rf, br := ex.rf, ex.br
	// Cleared whole, then the kept parts set: a composite literal with
	// fields is built on the stack and copied, twice the work.
	*ex = exchange{}
	ex.head, ex.rf, ex.br = head, rf, br
	ex.res.fields, ex.res.connection, ex.res.trailer = fields, conn, trailer
	ex.trailer.fields = tfields
}

// Forward acquires a process, forwards r to it and copies the response to
// w: the one way a request reaches the app, from every protocol. r
// describes the request as the front door's stages left it (Path,
// RawQuery, Header, Identity, Trailer); body is its body (nil when
// r.ContentLength is 0). w receives the response and must implement
// http.Flusher to stream (and SetReadDeadline, to cut off a slow body the
// app no longer needs); for a WebSocket upgrade, w must be able to hijack
// the client connection (http.NewResponseController). ctx ends the
// exchange early when it is cancelled (the client went away).
//
// The request is written and the response read on the calling goroutine
// over pooled keep-alive connections. A WebSocket upgrade the app accepts
// (101) is relayed in both directions until either side closes. Failures
// before the response header are answered through one funnel
// (answerError); the lease is released once, after the response body was
// copied or the upgraded connection ended.
func (h *Handler) Forward(ctx context.Context, w http.ResponseWriter, r *pipeline.Request, body io.Reader) {
	h.once.Do(h.init)
	ex := exchangePool.Get().(*exchange)
	ex.h, ex.ctx, ex.w = h, ctx, w
	in := &ex.in
	in.method, in.host, in.header = r.Method, r.Host, r.Header
	in.path, in.query = r.Path, r.RawQuery
	in.remoteAddr, in.tls, in.pr, in.trailer = r.RemoteAddr, r.TLS, r, r.Trailer
	if h.ForwardIdentity {
		in.identity = r.Identity
	}
	in.contentLength = r.ContentLength
	if in.contentLength != 0 && body != nil {
		ex.body = body
	} else {
		in.contentLength = 0
	}
	// Only WebSocket upgrades are relayed (as IIS does). Any other, h2c
	// above all, would tunnel the client past the front door to the app:
	// such a request is forwarded as an ordinary one, its Upgrade dropped.
	// An h2c app gets a WebSocket as an extended CONNECT (h2tunnel.go).
	if up := upgradeOf(r.Header); up != "" && h1.EqualFoldASCII(up, "websocket") {
		switch {
		case !h.H2C:
			in.upgrade = up
		case tunnelsTo(r.Method, in.get("Sec-Websocket-Key"), ex.body != nil):
			in.upgrade, in.tunnel = "websocket", true
		}
	}
	defer func() {
		ex.reset()
		exchangePool.Put(ex)
	}()
	if isExtendedConnect(r) {
		if h.H2C {
			in.upgrade, in.tunnel = "websocket", true
			in.contentLength = 0
			ex.body, ex.stream = nil, body
		} else {
			ex.toUpgrade(body)
		}
	}
	h.forward(ex)
}

// forward is Forward after the request was described: acquire a process,
// send the request (forwardH1, forwardH2 or forwardTunnel), copy the
// response to ex.w. Failures before the
// response header go through answerError; failures after it abort the
// client's response (panic(http.ErrAbortHandler)).
func (h *Handler) forward(ex *exchange) {
	lease, err := h.Backend.Acquire(ex.ctx)
	if err != nil {
		h.fail(ex, err, 0)
		return
	}
	ex.lease = lease
	defer func() { ex.lease.Release() }()
	switch {
	case h.h2 == nil:
		h.forwardH1(ex)
	case ex.in.tunnel:
		h.forwardTunnel(ex)
	default:
		h.forwardH2(ex)
	}
}

// retryOnNewProcess is the one way a request that failed with err on
// ex.lease's process is sent again: it releases that lease (first waiting
// for the supervisor to notice the process's exit when awaitExit is set,
// so that the next lease is on a fresh process) and acquires another into
// ex.lease. It reports false, after answering the client, when no process
// can be had; ex.lease then stays the old one, whose Release again is a
// no-op.
func (h *Handler) retryOnNewProcess(ex *exchange, err error, awaitExit bool) bool {
	old := ex.lease
	if awaitExit && !old.ProcessExited() {
		ex.awaitExit()
	}
	h.log.Warn("retrying request on a new process",
		"pid", old.PID, "method", ex.in.method, "path", ex.path(), "err", err)
	old.Release()
	lease, aerr := h.Backend.Acquire(ex.ctx)
	if aerr != nil {
		h.fail(ex, aerr, 0)
		return false
	}
	ex.lease = lease
	return true
}

// forwardH1 sends the request to an HTTP/1.1 app over ex.lease and copies
// the answer, or switches protocols after a 101.
func (h *Handler) forwardH1(ex *exchange) {
	err := ex.roundTrip()
	if err != nil && h.RetryIdempotent && ex.retryable(err) {
		if !h.retryOnNewProcess(ex, err, false) {
			return
		}
		err = ex.roundTrip()
	}
	if err != nil {
		pipeline.SetUpstream(ex.w, ex.lease.PID, time.Time{})
		h.fail(ex, &BackendError{PID: ex.lease.PID, Err: err}, ex.lease.PID)
		return
	}
	pipeline.SetUpstream(ex.w, ex.lease.PID, headArrived()) // for the observers: Done.PID, Done.FirstByte
	if ex.res.status == http.StatusSwitchingProtocols {
		ex.switchProtocols()
		return
	}
	ex.respond()
}

// headArrived returns now, for pipeline.SetUpstream: the instant the app's
// answer head arrived. The front door only subtracts the request's start
// from it (Done.FirstByte), by the two monotonic readings, so the
// monotonic clock alone is read: one clock read where time.Now takes two.
func headArrived() time.Time { return monoclock.Time(monoclock.Now()) }

// path returns the request path without the query, for logs.
func (ex *exchange) path() string {
	return ex.in.path
}

func (h *Handler) fail(ex *exchange, err error, pid int) {
	answerError(ex.w, ex.ctx, ex.in.method, ex.path(), err, h.errorOptions(ex.in.pr, err, pid))
}

// replayable reports whether the request may be sent again on another
// connection: it has no body and is safe to repeat.
func (ex *exchange) replayable() bool {
	return ex.in.contentLength == 0 && ex.idempotent()
}

func (ex *exchange) idempotent() bool {
	switch ex.in.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return ex.in.has("Idempotency-Key") || ex.in.has("X-Idempotency-Key")
}

// retryable reports whether a failed round trip may be repeated on a new
// process (see Handler.RetryIdempotent). It waits up to exitGrace for the
// process to be reported as exited after a refused or reset connection.
func (ex *exchange) retryable(err error) bool {
	if !ex.replayable() || ex.ctx.Err() != nil {
		return false
	}
	if ex.lease.ProcessExited() {
		return true
	}
	if !connectionFailed(err) {
		return false
	}
	return ex.awaitExit()
}

// awaitExit waits up to exitGrace for the lease's process to be reported
// as exited, and reports whether it was.
func (ex *exchange) awaitExit() bool {
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-ex.lease.Exited:
		return true
	case <-t.C:
		return false
	case <-ex.ctx.Done():
		return false
	}
}

// roundTrip sends the request to ex.lease's process and reads the final
// response head into ex.res, forwarding informational responses to the
// client. A safe request that fails on a reused connection before any
// response byte came back (the app closed an idle connection) is sent once
// more on a new connection.
func (ex *exchange) roundTrip() error {
	pool := ex.h.pool
	addr := ex.lease.Addr
	if hc := ex.lease.TakeConn(); hc != nil {
		pool.adopt(hc, addr) // a new process's first lease: no connect of its own
	}
	for attempt := 0; ; attempt++ {
		c, now := pool.get(addr)
		for c != nil && !ex.replayable() && !c.alive() {
			c.close()
			c, now = pool.get(addr)
		}
		if c == nil || attempt > 0 {
			if c != nil {
				pool.put(c)
			}
			var err error
			if c, err = pool.dial(ex.ctx, addr); err != nil {
				return err
			}
			now = 0
		}
		started, err := ex.send(c, now)
		if err == nil {
			return nil
		}
		ex.drop()
		if ctxErr := ex.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		var ce *clientBodyError
		if errors.As(ex.bodyErr, &ce) {
			return ex.bodyErr // the client's body was bad or cut short, not the app
		}
		if attempt > 0 || started || !c.reused || !ex.replayable() {
			return err
		}
	}
}

// send writes the request on c and reads the final response head. started
// reports whether any response byte arrived. On success ex.conn is c.
// now is the monoclock.Now reading the pool took when it handed c out, 0 for a
// connection just dialled: the request's deadlines start from it.
func (ex *exchange) send(c *appConn, now time.Duration) (started bool, err error) {
	ex.conn = c
	ex.stop = afterFuncSlot(ex.ctx, c.abort)
	ex.head = ex.appendHead(ex.head[:0])
	if ex.body == nil && c.sock != nil {
		// Written by the first read of the answer, which then waits: no
		// read that finds nothing yet. (readHead reuses ex.head only after
		// that read returned.)
		if c.itc != nil {
			if now == 0 {
				now = monoclock.Now()
			}
			c.itc.extendBeforeRead(now)
		}
		c.sock.WriteBeforeRead(ex.head)
	} else if _, err := c.nc.Write(ex.head); err != nil {
		return false, err
	}
	if ex.body != nil {
		ex.startBody(c)
	}
	br := ex.reader(c)
	for n1xx := 0; ; n1xx++ {
		head, started, err := readResponse(br, ex.head[:0], &ex.res)
		ex.head = head
		if err != nil {
			return started, err
		}
		status := ex.res.status
		if status == http.StatusSwitchingProtocols {
			if ex.in.upgrade == "" {
				return true, malformed("101 Switching Protocols to a request without Upgrade")
			}
			return true, nil
		}
		if status >= 200 {
			if ex.bodyDone != nil && !ex.contDone {
				ex.closeStop() // a final answer to Expect: 100-continue: the body is not sent
			}
			return true, nil
		}
		if n1xx == max1xx {
			return true, malformed("too many 1xx responses")
		}
		if status == http.StatusContinue && ex.cont != nil && !ex.contDone {
			ex.contDone = true
			close(ex.cont)
		}
		ex.inform(status)
	}
}

// reader returns c's response reader: the exchange's own, set to read
// from c, unless c has one (a request before on c in this exchange).
func (ex *exchange) reader(c *appConn) *bufio.Reader {
	if c.br == nil {
		if ex.br == nil {
			ex.br = bufio.NewReaderSize(nil, connReadSize)
		}
		ex.br.Reset(c.nc)
		c.br = ex.br
	}
	return c.br
}

// inform forwards an informational (1xx) response to the client, as
// ReverseProxy does (103 Early Hints, 100 Continue).
func (ex *exchange) inform(status int) {
	h := ex.w.Header()
	var added []string
	for _, f := range ex.res.fields {
		if !ex.res.forwarded(f.name) {
			continue
		}
		k := http.CanonicalHeaderKey(f.name)
		if _, ok := h[k]; !ok {
			added = append(added, k)
		}
		h[k] = append(h[k], strings.Clone(f.value))
	}
	ex.w.WriteHeader(status)
	for _, k := range added {
		delete(h, k)
	}
}

// appendHead appends the request line and header sent to the app.
func (ex *exchange) appendHead(b []byte) []byte {
	in := &ex.in
	b = append(b, in.method...)
	b = append(b, ' ')
	b = append(b, in.path...)
	if in.query != "" {
		b = append(b, '?')
		b = append(b, in.query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, in.host...)
	b = append(b, "\r\n"...)
	ex.hw.b = b
	appendRequestFields(&ex.rf, &ex.hw, in, ex.lease.Token)
	b = ex.hw.b
	ex.hw.b = nil
	switch {
	case in.contentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, in.contentLength, 10)
		b = append(b, "\r\n"...)
	case in.contentLength < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		if in.trailer != nil {
			b = appendTrailerNames(b, in.trailer)
		}
	case in.method == http.MethodPost || in.method == http.MethodPut || in.method == http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	return append(b, "\r\n"...)
}

// headWriter appends "Name: value" lines.
type headWriter struct{ b []byte }

func (w *headWriter) add(name, value string) {
	w.b = append(w.b, name...)
	w.b = append(w.b, ": "...)
	w.b = append(w.b, value...)
	w.b = append(w.b, "\r\n"...)
}

// expectContinueTimeout is how long the body waits for the app's 100
// Continue when the client sent Expect: 100-continue (Go's Transport
// setting used before).
const expectContinueTimeout = time.Second

// startBody starts the body writer for c.
func (ex *exchange) startBody(c *appConn) {
	ex.bodyDone = make(chan error, 1)
	ex.stopBody = make(chan struct{})
	if h1.HasToken(ex.in.get("Expect"), "100-continue") {
		ex.cont = make(chan struct{})
	} else {
		ex.contDone = true
	}
	ex.bodyStart = true
	go ex.writeBody(c, ex.cont, ex.stopBody, ex.bodyDone)
}

// writeBody is the body-writer goroutine: it sends the request body to the
// app (re-chunked when its length is unknown) and reports the result on
// done. It ends when the body is sent, when stop is closed before it
// started sending, or when a read or write fails.
func (ex *exchange) writeBody(c *appConn, cont, stop <-chan struct{}, done chan<- error) {
	if cont != nil {
		t := time.NewTimer(expectContinueTimeout)
		select {
		case <-cont:
		case <-t.C:
		case <-stop:
			t.Stop()
			done <- errBodyNotSent
			return
		}
		t.Stop()
	}
	done <- ex.copyBody(c)
}

var errBodyNotSent = errors.New("request body not sent")

// copyBody sends the request body.
func (ex *exchange) copyBody(c *appConn) error {
	bufp := buffers.Get().(*[bufferSize]byte)
	defer buffers.Put(bufp)
	buf := bufp[:]
	chunked := ex.in.contentLength < 0
	var sent int64
	for {
		var n int
		var rerr error
		if chunked {
			// Room for the chunk-size line before and CRLF after the data.
			n, rerr = ex.body.Read(buf[10 : len(buf)-2])
			if n > 0 {
				hdr := strconv.AppendInt(buf[:0:10], int64(n), 16)
				hdr = append(hdr, "\r\n"...)
				start := 10 - len(hdr)
				copy(buf[start:], hdr)
				buf[10+n], buf[11+n] = '\r', '\n'
				if _, err := c.nc.Write(buf[start : 12+n]); err != nil {
					return err
				}
			}
		} else {
			n, rerr = ex.body.Read(buf)
			if sent+int64(n) > ex.in.contentLength {
				// The app was told the length, and has fewer bytes: it
				// must not wait for the rest, nor its answer be awaited.
				_ = c.nc.Close()
				return &clientBodyError{errors.New("request body longer than its Content-Length")}
			}
			if n > 0 {
				if _, err := c.nc.Write(buf[:n]); err != nil {
					return err
				}
			}
		}
		sent += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The app must not wait for the rest: cut the connection,
			// which also ends the wait for its response.
			_ = c.nc.Close()
			return &clientBodyError{rerr}
		}
	}
	if !chunked {
		if sent != ex.in.contentLength {
			_ = c.nc.Close()
			return &clientBodyError{io.ErrUnexpectedEOF}
		}
		return nil
	}
	b := append(buf[:0], "0\r\n"...)
	if ex.in.trailer != nil {
		b = appendTrailers(b, ex.in.trailer)
	}
	b = append(b, "\r\n"...)
	_, err := c.nc.Write(b)
	return err
}

// clientBodyError is a failure reading the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

func (ex *exchange) closeStop() {
	if !ex.stopDone && ex.stopBody != nil {
		ex.stopDone = true
		close(ex.stopBody)
	}
}

// bodyGrace is how long a finished response waits for the body writer to
// report before the body is cut off (the app answered without reading all
// of it, or the client is slow to send what the app no longer needs).
const bodyGrace = 100 * time.Millisecond

// endBody waits for the body writer, stopping it if it does not finish
// within grace. It reports whether the whole body was sent.
func (ex *exchange) endBody(grace time.Duration) bool {
	if !ex.bodyStart {
		return true
	}
	ex.bodyStart = false
	var err error
	select {
	case err = <-ex.bodyDone:
	default:
		ex.closeStop()
		t := time.NewTimer(grace)
		select {
		case err = <-ex.bodyDone:
		case <-t.C:
			_ = ex.conn.nc.Close() // unblocks a write to the app
			// Unblock a read from the client (slow, and the app no longer
			// needs the body), where the writer can.
			_ = http.NewResponseController(ex.w).SetReadDeadline(time.Now())
			err = <-ex.bodyDone
		}
		t.Stop()
	}
	ex.bodyErr = err
	return err == nil
}

// drop ends the current attempt's connection: it stops the body writer and
// closes the connection.
func (ex *exchange) drop() {
	c := ex.conn
	if c == nil {
		return
	}
	if ex.stop != nil {
		ex.stop()
		ex.stop = nil
	}
	_ = c.nc.Close()
	ex.endBody(0)
	c.close()
	ex.conn = nil
	ex.bodyDone, ex.cont, ex.stopBody = nil, nil, nil
	ex.contDone, ex.stopDone = false, false
}

// release ends the exchange's use of its connection: back to the pool when
// the response and request were complete and the app keeps it open.
func (ex *exchange) release(complete bool) {
	c := ex.conn
	if c == nil {
		return
	}
	if !ex.endBody(bodyGrace) {
		complete = false
	}
	if ex.stop != nil {
		if !ex.stop() {
			complete = false // the disconnect callback ran: c is closed
		}
		ex.stop = nil
	}
	ex.conn = nil
	if complete && !ex.res.close {
		ex.h.pool.put(c)
	} else {
		c.close()
	}
}
