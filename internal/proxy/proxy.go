// Package proxy forwards client requests to an app process, the way ANCM's
// out-of-process forwarding handler does: HTTP/1.1 to the process's loopback
// port, with the pairing token and X-Forwarded-For/-Proto added and client
// MS-ASPNETCORE* headers removed.
//
// Handler forwards ordinary requests with its own HTTP/1.1 client: the
// request is written and the response read on the handler's goroutine over
// pooled keep-alive connections per process address (no Transport
// goroutines, no header map copies). Upgrade requests (WebSockets) go
// through httputil.ReverseProxy. Both add what ANCM needs: a lease on a
// ready process per request, the ANCM header rules (written once,
// appendRequestFields), requestTimeout as an inactivity timeout, one retry
// of safe requests whose process died under them (and of safe requests on
// a stale keep-alive connection), and ANCM-style error pages through one
// funnel, WriteError.
//
// Differences from ANCM, on purpose:
//   - The raw (still escaped) path is forwarded; ANCM forwards the decoded one
//     (aspnet/AspNetCoreModule#60), which turns %2F into /.
//   - Hop-by-hop request and response headers (RFC 9110 §7.6.1: Connection and
//     the headers it names, Keep-Alive, Proxy-Connection, Proxy-Authorization,
//     TE except "trailers", Trailer, Transfer-Encoding, Upgrade unless
//     upgrading) are removed; ANCM forwards most of them.
//   - Response trailers are forwarded; ANCM drops them.
//   - The app's Date header is kept; ANCM replaces it with IIS's.
package proxy

import (
	"context"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Backend gives out leases on ready app processes. Acquire starts the app if
// needed and blocks until a process is ready, ctx ends, or starting fails.
// Its errors are the upstream sentinels (ErrStartupFailed, ErrRapidFails,
// ErrShuttingDown, ErrQueueFull, ErrOffline) or ctx's error.
// supervisor.Pool satisfies it.
type Backend interface {
	Acquire(ctx context.Context) (*upstream.Lease, error)
}

// Header names the proxy sets or strips.
const (
	headerToken      = "Ms-Aspnetcore-Token"
	headerClientCert = "Ms-Aspnetcore-Clientcert"
	headerPrefix     = "MS-ASPNETCORE" // every header starting with it is the module's
)

// Handler forwards each request to a process leased from Backend. It is an
// http.Handler for one app.
//
// The zero value is not usable: Backend must be set. Fields must not be
// changed after the first call to ServeHTTP; the Handler must not be copied
// after first use. It is safe for concurrent use.
type Handler struct {
	// Backend gives out the processes to forward to. Required.
	Backend Backend

	// RequestTimeout is ANCM's requestTimeout (default there 2 minutes): an
	// inactivity timeout, not a deadline. It bounds connecting to the app,
	// each write of the request to it, the wait for response headers, and
	// each read of the response body, each with a fresh budget. Expiry may
	// come up to RequestTimeout/8 (at most 1 s) late: deadlines are moved
	// lazily. It does not apply to an upgraded (WebSocket) connection. 0 or
	// negative means no timeout (connecting is then bounded by 30 s).
	RequestTimeout time.Duration

	// DisableStartUpErrorPage is disableStartUpErrorPage: a start failure
	// gives 502 with an empty body instead of the 502.5 page.
	DisableStartUpErrorPage bool

	// ErrorMode is <httpErrors errorMode>: who sees the details of the
	// 502.5 page (reason, command, exit status, app output) and of the 503
	// rapid-fail page (the last exit). The zero value is IIS's default,
	// DetailedLocalOnly: only requests from the machine itself (see
	// fromMachine) see them; everyone else gets the page without them.
	ErrorMode config.ErrorMode

	// ForwardResponseConnectionHeader is the handlerSetting of that name:
	// when true the app's response Connection header reaches the client
	// (so "Connection: close" closes the client connection); when false it
	// is removed, as ANCM does by default.
	ForwardResponseConnectionHeader bool

	// RetryIdempotent, when true, retries a request once on a newly acquired
	// process when its process died under it: the round trip failed before
	// any response came back, the process is exiting (Lease.Exited closed,
	// waited for up to 250 ms after a refused or reset connection), and the
	// request is safe to repeat (GET, HEAD, OPTIONS, TRACE, or carries an
	// Idempotency-Key or X-Idempotency-Key header) and has no body.
	RetryIdempotent bool

	// ForwardIdentity is forwardWindowsAuthToken: when true, the identity
	// the authentication stage put on the request (pipeline.RequestFrom)
	// goes to the app in the MS-ASPNETCORE-USER, -AUTHTYPE and -GROUPS
	// headers (see identity.go). When false, or for an anonymous request,
	// none of them is sent.
	ForwardIdentity bool

	// Log receives one line per failed request (app attributes should be
	// added by the caller with Log.With). nil discards.
	Log *slog.Logger

	once     sync.Once
	pool     *connPool              // keep-alive connections for ordinary requests
	rp       *httputil.ReverseProxy // for Upgrade requests
	upgrades *http.Transport        // the rp's; no inactivity timeout
	log      *slog.Logger
}

// ServeHTTP acquires a process, forwards r to it and copies the response
// back. Failures are answered through WriteError. The lease is released
// once, after the response body has been copied or the upgraded connection
// has ended.
//
// Ordinary requests go through the lean client (written and read on this
// goroutine over pooled keep-alive connections); Upgrade requests
// (WebSockets) go through httputil.ReverseProxy, which relays the upgraded
// connection. Both apply the same header rules (appendRequestFields).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.init)
	// Only WebSocket upgrades are relayed (as IIS does). Any other, h2c
	// above all, would tunnel the client past the front door to the app:
	// such a request is forwarded as an ordinary one, its Upgrade dropped.
	if up := upgradeType(r.Header); up != "" && strings.EqualFold(up, "websocket") {
		h.serveUpgrade(w, r)
		return
	}
	ex := exchangePool.Get().(*exchange)
	ex.h, ex.ctx, ex.w = h, r.Context(), w
	in := &ex.in
	in.method, in.host, in.hdr = r.Method, r.Host, r.Header
	in.remoteAddr, in.tls, in.trailer = r.RemoteAddr, r.TLS, r.Trailer
	in.pr = pipeline.RequestFrom(w)
	in.identity = nil
	if in.pr != nil {
		if h.ForwardIdentity {
			in.identity = in.pr.Identity
		}
		in.path, in.query = in.pr.Path, in.pr.RawQuery
	} else {
		in.path, in.query = r.URL.EscapedPath(), r.URL.RawQuery
		if r.URL.Opaque != "" || in.path == "" {
			in.path, in.query, _ = strings.Cut(r.URL.RequestURI(), "?")
		}
	}
	// ContentLength 0 means no body, whatever Body is: Go's HTTP/2 and
	// HTTP/3 servers give even a bodiless GET a non-nil Body. A body of
	// unknown length is -1.
	in.contentLength = r.ContentLength
	if r.Body == nil || r.Body == http.NoBody {
		in.contentLength = 0
	}
	if in.contentLength != 0 {
		ex.body = r.Body
		// The app may answer while it still reads the body (an echo, a
		// stream): net/http's HTTP/1 server would otherwise stop the body
		// once the response head is flushed. Other protocols are always
		// full duplex and say so with an error, which is ignored.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	defer func() {
		ex.reset()
		exchangePool.Put(ex)
	}()
	h.forward(ex)
}

// upgradeType returns the protocol an Upgrade request asks for
// (Connection: upgrade and Upgrade: x), else "".
func upgradeType(h http.Header) string {
	up := h["Upgrade"]
	if len(up) == 0 {
		return ""
	}
	for _, v := range h["Connection"] {
		if containsToken(v, "upgrade") {
			return up[0]
		}
	}
	return ""
}

// CloseIdleConnections closes the idle keep-alive connections to app
// processes. Call it when the app is stopped or recycled, and on shutdown.
// Connections in use at the time are closed when their request ends,
// unless the Handler is used again meanwhile.
func (h *Handler) CloseIdleConnections() {
	h.once.Do(h.init)
	h.pool.closeIdle()
	h.upgrades.CloseIdleConnections()
}

func (h *Handler) init() {
	h.log = h.Log
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.pool = newConnPool(h.RequestTimeout)
	h.upgrades = newTransport(h.RequestTimeout, true)
	h.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      roundTripper{h},
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.errorHandler,
		FlushInterval:  0, // flushWriter flushes every write
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
}

// appendList returns "<prior values>, v", or v when there are none.
func appendList(prior []string, v string) string {
	switch len(prior) {
	case 0:
		return v
	case 1:
		return prior[0] + ", " + v
	}
	return strings.Join(prior, ", ") + ", " + v
}

// hasModulePrefix reports whether the header name k starts with
// MS-ASPNETCORE, ignoring case (ANCM compares the first 13 characters).
func hasModulePrefix(k string) bool {
	return len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix)
}

// errorOptions says how to answer err for the request r (only RemoteAddr
// and the context are read) that w answers.
func (h *Handler) errorOptions(w http.ResponseWriter, r *http.Request, err error, pid int) ErrorOptions {
	hide := false
	if status, sub := StatusFor(err); sub == 5 || status == http.StatusServiceUnavailable {
		local := false
		if m := h.ErrorMode; m != config.ErrorModeDetailed && m != config.ErrorModeCustom {
			local = fromMachine(w, r) // only DetailedLocalOnly asks
		}
		hide = !h.ErrorMode.ShowDetails(local)
	}
	return ErrorOptions{
		DisableStartUpErrorPage: h.DisableStartUpErrorPage,
		HideDetails:             hide,
		RequestTimeout:          h.RequestTimeout,
		PID:                     pid,
		Log:                     h.log,
	}
}

// flushWriter flushes the client response after every write, so each
// chunk read from the app reaches the client at once, with the headers in
// the same packet as the first chunk. It unwraps for http.ResponseController
// (Flush, Hijack for upgrades).
type flushWriter struct{ http.ResponseWriter }

func (w *flushWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if err == nil {
		w.Flush()
	}
	return n, err
}

// Flush sends buffered data to the client, if the writer can.
func (w *flushWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the client's ResponseWriter.
func (w *flushWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool hands ReverseProxy 64 KiB copy buffers (the lean client uses
// them too: one app read, one client write per 64 KiB). It stores array
// pointers, so Put does not allocate.
type bufferPool struct{}

const bufferSize = 64 << 10

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= bufferSize {
		buffers.Put((*[bufferSize]byte)(b[:bufferSize]))
	}
}
