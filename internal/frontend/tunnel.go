package frontend

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// isTunnel reports whether r opens a tunnel on an HTTP/2 or HTTP/3 stream:
// an extended CONNECT (RFC 8441, RFC 9220), which carries a WebSocket in
// the stream's DATA frames instead of on a hijacked connection. Go's
// HTTP/2 server keeps ":protocol" in the header; quic-go's HTTP/3 server
// puts it in Proto.
func isTunnel(r *http.Request) bool {
	if r.Method != http.MethodConnect {
		return false
	}
	switch r.ProtoMajor {
	case 2:
		return r.Header.Get(":protocol") != ""
	case 3:
		return r.Proto != "" && r.Proto != "HTTP/3.0"
	}
	return false
}

// tunnelIdle applies the idle timeout of upgraded connections
// (Timeouts.WebSocket) to a tunnel stream, as hijackedConn does for an
// HTTP/1.1 upgrade: once no byte has gone either way for idle, the
// request's context is cancelled and its body closed, which ends the
// relay to the app and resets the stream. It returns the writer and
// request to serve the tunnel with, and a stop function to call when the
// handler returns. For any other request, or without a timeout, it
// returns w and r unchanged.
func (s *Server) tunnelIdle(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func()) {
	idle := time.Duration(s.hijacked.idle.Load())
	if idle <= 0 || !isTunnel(r) {
		return w, r, func() {}
	}
	t, ctx := s.newTunnel(r.Context(), idle, r.RemoteAddr)
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		t.body = r.Body
		r.Body = &tunnelBody{ReadCloser: r.Body, t: t}
	}
	t.start()
	return &tunnelWriter{ResponseWriter: w, t: t}, r, t.stop
}

// newTunnel returns the idle state of a tunnel stream whose request's
// context is parent, and the context to serve it with: it ends when the
// tunnel is idle for idle. The caller sets its body, then starts it.
func (s *Server) newTunnel(parent context.Context, idle time.Duration, remote string) (*tunnel, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	t := &tunnel{idle: idle, cancel: cancel, remote: remote, srv: s}
	t.last.Store(time.Now().UnixNano())
	return t, ctx
}

// start starts the idle timer.
func (t *tunnel) start() { t.timer = time.AfterFunc(t.idle, t.expire) }

// tunnel is the idle state of one tunnel stream.
type tunnel struct {
	idle   time.Duration
	last   atomic.Int64 // time of the last read or write, UnixNano
	timer  *time.Timer  // runs expire
	cancel context.CancelFunc
	body   io.Closer // the stream's request body; nil: none
	remote string
	srv    *Server
	once   sync.Once
}

// touch records traffic.
func (t *tunnel) touch() { t.last.Store(time.Now().UnixNano()) }

// expire ends the tunnel if it has been idle for t.idle, else waits for
// the rest.
func (t *tunnel) expire() {
	quiet := time.Since(time.Unix(0, t.last.Load()))
	if quiet < t.idle {
		t.timer.Reset(t.idle - quiet)
		return
	}
	t.srv.hijacked.log().Debug("tunnel stream idle, closing", "remote", t.remote, "idle", t.idle.String())
	t.end()
}

// end cancels the request and closes its body, once.
func (t *tunnel) end() {
	t.once.Do(func() {
		t.cancel()
		if t.body != nil {
			_ = t.body.Close()
		}
	})
}

// stop ends the timer when the handler returns; the stream is done.
func (t *tunnel) stop() {
	t.timer.Stop()
	t.cancel()
}

// tunnelBody is a tunnel's request body: reads count as traffic.
type tunnelBody struct {
	io.ReadCloser
	t *tunnel
}

func (b *tunnelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.t.touch()
	}
	return n, err
}

// tunnelWriter is a tunnel's response: writes count as traffic.
type tunnelWriter struct {
	http.ResponseWriter
	t *tunnel
}

func (w *tunnelWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if n > 0 {
		w.t.touch()
	}
	return n, err
}

// Flush sends what was written (the relay flushes every message).
func (w *tunnelWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the server's writer.
func (w *tunnelWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
