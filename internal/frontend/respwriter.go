package frontend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/h2srv"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// respWriter records status, substatus and body bytes for the observers,
// runs the app's outbound stages (custom headers, compression) over the
// response, and tracks hijacked connections so shutdown can close them.
type respWriter struct {
	http.ResponseWriter
	srv       *Server
	status    int
	substatus int
	// logStatus, when not 0, is the status the observers get in place of
	// status (SetLogStatus).
	logStatus int
	written   int64
	hijacked  bool
	// upgraded is the hijacked connection (nil: none), whose bytes each
	// way the request reports with its body's.
	upgraded *hijackedConn
	// writeFailed is set when writing the response to the client failed.
	writeFailed bool
	// leftSeen is set when finishAnswer ended an answer nothing had been
	// written of; left says whether the client had gone by then (see
	// clientLeft).
	leftSeen, left bool
	// sendEach, when not 0, is the send timeout given to each write (and
	// flush) as a write deadline: HTTP/3, whose streams take one. The lean
	// loop sets its own deadline only when a write has to wait, and the
	// HTTP/2 server (h2srv) keeps the timeout on its connection.
	sendEach  time.Duration
	pid       int       // the app process that served the request (SetUpstream)
	appHeader time.Time // when the app's response header arrived (SetUpstream)

	// req is the request as the stages left it, once it goes to the app.
	req *pipeline.Request
	// out is set when the app has outbound stages; body is the wrapped
	// body writer they returned (nil: none).
	out      *pipeline.Chain
	body     pipeline.BodyWriter
	answered bool // the outbound stages have run

	// app is the application's settings in force, chain its stages (nil:
	// none); errs its custom error pages (nil: none).
	app   pipeline.App
	chain *pipeline.Chain
	errs  pipeline.ErrorPages
	// chainEnded is set when chain's end observers were told the
	// request ended (leave): ended does not tell them again.
	chainEnded bool
	// skip is set when the answer about to be written is marked
	// fTrySkipCustomErrors (pipeline.SkipCustomErrors).
	skip bool
	// replaced is set when a custom error page replaced the answer being
	// written: the rest of that answer is dropped.
	replaced bool
	// exec is the ExecuteURL page to run once the replaced answer is over;
	// execStatus is the error's status, which its response is sent with.
	exec       string
	execStatus int
}

// use points w at cur's outbound stages and custom error pages (cur nil:
// none), for the answers written from now on.
func (w *respWriter) use(cur pipeline.App) {
	w.app, w.out, w.chain, w.errs, w.chainEnded = cur, outStages(cur), nil, nil, false
	if cur != nil {
		if c := cur.Chain(); c != nil {
			w.chain, w.errs = c, c.Errors
		}
	}
}

func (w *respWriter) WriteHeader(code int) {
	if w.replaced {
		return // the replaced answer's header: a custom error page went out instead
	}
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		if w.execStatus != 0 {
			code = w.execStatus // an ExecuteURL page keeps the error's status
		} else if w.errorPage(code) {
			return
		}
		w.status = code
		w.respond(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

// entityHeaders are the fields that describe a response's body; a custom
// error page drops those of the answer it replaces.
var entityHeaders = []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Content-Disposition",
	"Etag", "Last-Modified", "Transfer-Encoding", "Trailer", "Location", "X-Content-Type-Options"}

// errorPage answers an error status with the application's custom error
// page, if it has one for it (IIS's custom error module, which runs after
// every other module, over the app's answers and the server's own alike).
// It reports whether it replaced the answer; the replaced answer's body
// is then dropped. An ExecuteURL page is run by end, once the replaced
// answer is over.
func (w *respWriter) errorPage(code int) bool {
	if w.errs == nil || code < 400 {
		return false
	}
	pg := w.errs.Page(w.req, code, w.substatus, w.skip || !w.appHeader.IsZero())
	if pg == nil {
		return false
	}
	w.replaced = true
	h := w.ResponseWriter.Header()
	for _, name := range entityHeaders {
		h.Del(name)
	}
	switch {
	case pg.Location != "":
		h.Set("Location", pg.Location)
		w.substatus = 0 // the log shows the redirect, not the error's sub-status
		w.send(http.StatusFound, nil)
	case pg.ExecuteURL != "":
		w.exec, w.execStatus = pg.ExecuteURL, code
	case pg.Standard:
		var page bufferedPage
		pages.Status(&page, code, w.substatus, "")
		for k, v := range page.h {
			h[k] = v
		}
		w.send(code, page.body.Bytes())
	default:
		h.Set("Content-Type", pg.ContentType)
		w.send(code, pg.Body)
	}
	return true
}

// send writes a custom error page: status and body, through the outbound
// stages.
func (w *respWriter) send(status int, body []byte) {
	h := w.ResponseWriter.Header()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.status = status
	w.respond(status)
	if w.body != nil {
		h.Del("Content-Length") // a wrapper (compression) changes the length
	}
	w.ResponseWriter.WriteHeader(status)
	if len(body) == 0 {
		return
	}
	if w.body != nil {
		_, _ = w.body.Write(body)
		return
	}
	_, _ = w.write(body)
}

// end finishes the answer: it runs a pending ExecuteURL page, then ends a
// wrapped body. It is deferred by serve; ctx ends when the client goes
// away.
func (w *respWriter) end(ctx context.Context) {
	if w.exec != "" {
		// The replaced answer may have ended in a panic (an abort): pass
		// it on without running the page.
		if v := recover(); v != nil {
			w.closeBody()
			panic(v)
		}
		defer w.closeBody()
		w.execute(ctx)
		return
	}
	w.closeBody()
}

// execute sends the response of the application's ExecuteURL page with
// the error's status: the request again, as GET (HEAD stays HEAD) without
// a body, to the page's path. Its response is not replaced again, so
// pages cannot loop.
func (w *respWriter) execute(ctx context.Context) {
	target := w.exec
	w.exec = ""
	r := *w.req
	if r.Method != http.MethodHead {
		r.Method = http.MethodGet
	}
	r.ContentLength, r.Trailer = 0, nil
	h := w.ResponseWriter.Header()
	altSvc := h.Get("Alt-Svc")
	clear(h)
	if altSvc != "" {
		h.Set("Alt-Svc", altSvc)
	}
	w.replaced, w.skip, w.errs = false, false, nil
	p, q, _ := strings.Cut(target, "?")
	if res := r.Rewrite(p, q); res != nil {
		pipeline.WriteResult(w, &r, res, w.srv.log)
		return
	}
	w.app.Forward(ctx, w, &r, nil)
	if w.status == 0 {
		w.WriteHeader(w.execStatus)
	}
}

// answerFinisher is a server's ResponseWriter that can end its answer
// before the handler returns, as its server otherwise does after: the
// header if not yet sent, what it still buffers, the last chunk or the end
// of the stream, trailers. A second Finish does nothing more. The lean
// writer, the HTTP/2 server's stream and quic-go's HTTP/3 writer are;
// net/http's writers are not (their end is sent after the handler
// returns).
type answerFinisher interface {
	Finish() error
}

var (
	_ answerFinisher = (*leanWriter)(nil)
	_ answerFinisher = (*h2srv.Stream)(nil)
)

// finishAnswer has f, the server's writer as an answerFinisher (nil: it
// is none), end the answer now, unless the connection was hijacked;
// within the send timeout (sendEach), as every write. An end that could
// not be sent marks the answer as not written in full.
func (w *respWriter) finishAnswer(f answerFinisher, ctx context.Context) {
	if f == nil || w.hijacked {
		return
	}
	if w.status == 0 {
		// Whether the client left before any answer, asked before the
		// end is sent: quic-go ends an HTTP/3 request's context once
		// its stream's FIN is sent.
		w.leftSeen, w.left = true, ctx != nil && ctx.Err() != nil
	}
	if w.sendEach > 0 {
		w.sendDeadline()
	}
	if f.Finish() != nil {
		w.writeFailed = true
	}
}

// clientLeft reports whether the client went away (closed the
// connection, reset the stream) before any answer was written to it; ctx
// is the request's. Asked when nothing was written.
func (w *respWriter) clientLeft(ctx context.Context) bool {
	if w.leftSeen {
		return w.left
	}
	return ctx != nil && ctx.Err() != nil
}

// ended tells the end observers of the application whose answer w
// carries (use) that it is written.
func (w *respWriter) ended() {
	if w.chain != nil && !w.chainEnded {
		for _, o := range w.chain.EndObservers {
			o.RequestEnded(w.req)
		}
	}
}

// leave tells the end observers of c, the stages of an application that
// ran over the request before URL Rewrite sent it on to another
// application, that the request ended there: they counted it in (Dynamic
// IP Restrictions), and neither ended, which tells those of the
// application that answers, nor the observers of the finished request
// would tell them.
func (w *respWriter) leave(c *pipeline.Chain) {
	if c == nil || len(c.EndObservers) == 0 {
		return
	}
	for _, o := range c.EndObservers {
		o.RequestEnded(w.req)
	}
	if c == w.chain {
		w.chainEnded = true
	}
}

// SkipCustomErrors marks the answer about to be written as one that only
// existingResponse="Replace" replaces.
func (w *respWriter) SkipCustomErrors() { w.skip = true }

// bufferedPage is a ResponseWriter that keeps a page the pages package
// renders, for a custom error page to send.
type bufferedPage struct {
	h    http.Header
	body bytes.Buffer
}

func (b *bufferedPage) Header() http.Header {
	if b.h == nil {
		b.h = http.Header{}
	}
	return b.h
}
func (b *bufferedPage) WriteHeader(int)             {}
func (b *bufferedPage) Write(p []byte) (int, error) { return b.body.Write(p) }

// respond runs the outbound stages once, before the final header is sent.
func (w *respWriter) respond(code int) {
	if w.out == nil || w.answered {
		return
	}
	w.answered = true
	if b := w.out.Respond(w.req, code, pipeline.ResponseHeader(w.ResponseWriter.Header()), rawBody{w}); b != (rawBody{w}) {
		w.body = b
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // the body of an answer a custom error page replaced
	}
	if w.status == 0 {
		w.status = http.StatusOK
		w.respond(http.StatusOK)
	}
	if w.body != nil {
		return w.body.Write(p)
	}
	return w.write(p)
}

func (w *respWriter) write(p []byte) (int, error) {
	w.sendDeadline()
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	if err != nil {
		w.writeFailed = true
	}
	return n, err
}

// closeBody ends a wrapped body (a compressor's trailer).
func (w *respWriter) closeBody() {
	if w.body != nil {
		if err := w.body.Close(); err != nil {
			w.srv.log.Debug("close response body", "err", err)
		}
		w.body = nil
	}
}

// SetSubstatus records the IIS substatus (such as 5 for 502.5) for the log.
func (w *respWriter) SetSubstatus(n int) { w.substatus = n }

// SetLogStatus records the status to log in place of the one written (a
// gRPC answer is 200 on the wire).
func (w *respWriter) SetLogStatus(status int) { w.logStatus = status }

// SetUpstream records the app process and the arrival of its response
// header, for the observers (Done.PID, Done.FirstByte).
func (w *respWriter) SetUpstream(pid int, header time.Time) { w.pid, w.appHeader = pid, header }

// Both writers splice for the forwarder: the lean one itself, the server's
// by passing it on.
var (
	_ pipeline.BodySplicer = (*leanWriter)(nil)
	_ pipeline.BodySplicer = (*respWriter)(nil)
)

// SpliceReady is the server writer's (see pipeline.BodySplicer), when nothing
// between the app and it must see the body: no outbound body wrapper
// (compression, for one) and no custom error page in place of the answer.
func (w *respWriter) SpliceReady(n int64) bool {
	if w.replaced || w.body != nil || w.status == 0 {
		return false
	}
	s, ok := w.ResponseWriter.(pipeline.BodySplicer)
	return ok && s.SpliceReady(n)
}

// SpliceBody is the server writer's (see pipeline.BodySplicer); the bytes it
// copied count as written.
func (w *respWriter) SpliceBody(src *net.TCPConn, n int64) (int64, bool, error) {
	m, client, err := w.ResponseWriter.(pipeline.BodySplicer).SpliceBody(src, n)
	w.written += m
	if client {
		w.writeFailed = true
	}
	return m, client, err
}

// HeaderValues is the server writer's (see pipeline.HeaderValueStore);
// slots of their own, for a writer that keeps none.
func (w *respWriter) HeaderValues(n int) []string {
	if s, ok := w.ResponseWriter.(pipeline.HeaderValueStore); ok {
		return s.HeaderValues(n)
	}
	return make([]string, n)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes buffered response data; it is a no-op if not supported.
func (w *respWriter) Flush() {
	if w.body != nil {
		_ = w.body.Flush()
		return
	}
	w.sendDeadline()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes over an HTTP/1.1 connection (WebSockets). The connection is
// closed by Server shutdown if the handler still holds it then.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	hc := w.srv.hijacked.add(c)
	// What the server read beyond the request's head is the client's
	// first bytes after the upgrade, which the hijacker takes from brw.
	hc.in.Add(int64(brw.Reader.Buffered()))
	w.upgraded = hc
	return hc, brw, nil
}

// rawBody is the client side of a response body, for outbound stages to
// wrap: writes go to the client uncompressed and are counted.
type rawBody struct{ w *respWriter }

func (b rawBody) Write(p []byte) (int, error) { return b.w.write(p) }
func (b rawBody) Flush() error {
	b.w.sendDeadline()
	return http.NewResponseController(b.w.ResponseWriter).Flush()
}
func (b rawBody) Close() error { return nil }

// countingBody is the request body as the app reads it, the same on both
// ways in: it counts the bytes, renews the read deadline before every read
// (the body timeout), and cuts a body of unknown length off at max.
type countingBody struct {
	rc      io.Reader
	ctl     readDeadliner
	timeout time.Duration
	// max, when > 0, is the most a body may carry (maxAllowedContentLength
	// for a body of unknown length): a longer one fails with
	// *http.MaxBytesError, which the app answers with 413.
	max  int64
	n    int64
	err  error // the limit's error, once reached
	noDL bool  // the connection has no read deadlines (HTTP/3)
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.timeout > 0 && !b.noDL {
		if err := b.ctl.SetReadDeadline(time.Now().Add(b.timeout)); errors.Is(err, http.ErrNotSupported) {
			b.noDL = true
		}
	}
	if b.max > 0 && int64(len(p)) > b.max-b.n+1 {
		p = p[:b.max-b.n+1] // one byte over tells a body at the limit from a longer one
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.max > 0 && b.n > b.max {
		n -= int(b.n - b.max)
		b.n = b.max
		b.err = &http.MaxBytesError{Limit: b.max}
		return n, b.err
	}
	return n, err
}

// readDeadliner sets the client connection's read deadline
// (*http.ResponseController on the net/http path, the lean writer).
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// sendDeadline gives the next write to the client sendEach, if set.
func (w *respWriter) sendDeadline() {
	if w.sendEach > 0 {
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.sendEach))
	}
}
