package frontend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

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
	// writeFailed is set when writing the response to the client failed.
	writeFailed bool
	pid         int       // the app process that served the request (SetUpstream)
	appHeader   time.Time // when the app's response header arrived (SetUpstream)

	// req is the request as the stages left it, once it goes to the app.
	req *pipeline.Request
	// out is set when the app has outbound stages; body is the wrapped
	// body writer they returned (nil: none).
	out      *pipeline.Chain
	body     pipeline.BodyWriter
	answered bool // the outbound stages have run
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.respond(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

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

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes buffered response data; it is a no-op if not supported.
func (w *respWriter) Flush() {
	if w.body != nil {
		_ = w.body.Flush()
		return
	}
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
	return w.srv.hijacked.add(c), brw, nil
}

// rawBody is the client side of a response body, for outbound stages to
// wrap: writes go to the client uncompressed and are counted.
type rawBody struct{ w *respWriter }

func (b rawBody) Write(p []byte) (int, error) { return b.w.write(p) }
func (b rawBody) Flush() error                { return http.NewResponseController(b.w.ResponseWriter).Flush() }
func (b rawBody) Close() error                { return nil }

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
