// Package proxy forwards client requests to an app process, the way ANCM's
// out-of-process forwarding handler does: HTTP/1.1 to the process's loopback
// port, with the pairing token and X-Forwarded-For/-Proto added and client
// MS-ASPNETCORE* headers removed.
//
// Handler wraps httputil.ReverseProxy (Rewrite, ModifyResponse, ErrorHandler,
// Transport, BufferPool) and adds what ANCM needs on top: a lease on a ready
// process per request, the ANCM header rules, requestTimeout as an
// inactivity timeout, one retry of safe requests whose process died under
// them, and ANCM-style error pages through one funnel, WriteError.
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
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
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

	// Log receives one line per failed request (app attributes should be
	// added by the caller with Log.With). nil discards.
	Log *slog.Logger

	once      sync.Once
	rp        *httputil.ReverseProxy
	transport *http.Transport // keep-alive pool for ordinary requests
	upgrades  *http.Transport // for Upgrade requests; no inactivity timeout
	log       *slog.Logger
}

// exchange is one request's state, reachable from the outbound request's
// context by the ReverseProxy hooks.
//
// It is itself that context: it embeds the client request's context and
// answers Value(exchangeKey{}) with itself, which saves a context.WithValue
// allocation per request. Done, Err and Deadline are the embedded
// context's, so context.WithCancel on top of it still recognises the
// server's cancelCtx and starts no goroutine.
type exchange struct {
	context.Context // the client request's context

	h     *Handler
	in    *http.Request
	lease *upstream.Lease // the current lease; replaced on retry
	// conn holds the app's response Connection values when
	// ForwardResponseConnectionHeader is set (ReverseProxy strips them
	// before ModifyResponse sees the response).
	conn []string
	// w is the client's ResponseWriter, flushing after every write.
	w flushWriter
	// hdr backs the token, X-Forwarded-For and X-Forwarded-Proto values
	// rewrite sets, so they cost no allocation of their own. Each is handed
	// out as a one-element slice with cap 1, so an append copies.
	hdr [3]string
}

type exchangeKey struct{}

// Value returns ex for exchangeKey{}, else the client context's value.
func (ex *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return ex
	}
	return ex.Context.Value(key)
}

// ServeHTTP acquires a process, forwards r to it and copies the response
// back. Failures are answered through WriteError. The lease is released
// once, after the response body has been copied or the upgraded connection
// has ended.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.init)
	lease, err := h.Backend.Acquire(r.Context())
	if err != nil {
		h.writeError(w, r, err, 0)
		return
	}
	ex := &exchange{Context: r.Context(), h: h, in: r, lease: lease, w: flushWriter{w}}
	// ReverseProxy.ServeHTTP returns only after the body copy or the
	// upgraded connection has finished, so this is the right moment. A
	// deferred call also covers its panic(http.ErrAbortHandler) when the
	// body copy fails midway.
	defer func() { ex.lease.Release() }()
	h.rp.ServeHTTP(&ex.w, r.WithContext(ex))
}

// CloseIdleConnections closes the idle keep-alive connections to app
// processes. Call it when the app is stopped or recycled, and on shutdown.
func (h *Handler) CloseIdleConnections() {
	h.once.Do(h.init)
	h.transport.CloseIdleConnections()
	h.upgrades.CloseIdleConnections()
}

func (h *Handler) init() {
	h.log = h.Log
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.transport = newTransport(h.RequestTimeout, false)
	h.upgrades = newTransport(h.RequestTimeout, true)
	h.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      roundTripper{h},
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.errorHandler,
		// ANCM flushes each chunk it reads, so streaming and server-sent
		// events work. flushWriter does that for every response; with 0
		// here ReverseProxy adds its own immediate header flush only for
		// responses of unknown length and text/event-stream, where the
		// headers must go out before the first body byte. (FlushInterval
		// -1 for all responses would send headers and a small body in two
		// writes, through a timer goroutine: ~10% of the proxy's CPU.)
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
}

func exchangeOf(r *http.Request) *exchange {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	return ex
}

// rewrite applies ANCM's request header rules (reference §3.2). ReverseProxy
// has already removed hop-by-hop headers and X-Forwarded-*/Forwarded from
// pr.Out; the prior values are read from pr.In.
func rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.Out)
	in, out := pr.In, pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = ex.lease.Addr
	// ReverseProxy re-encodes queries it cannot parse (";", bad escapes);
	// ANCM forwards the raw query unchanged, and so do we.
	out.URL.RawQuery = in.URL.RawQuery
	// out.Host is left as in.Host: ANCM preserves the Host header.

	for k := range out.Header {
		if hasModulePrefix(k) || underscoreSpoof(k) {
			delete(out.Header, k)
		}
	}
	vals := ex.hdr[:]
	vals[0] = ex.lease.Token
	out.Header[headerToken] = vals[0:1:1]
	if in.TLS != nil && len(in.TLS.PeerCertificates) > 0 {
		out.Header[headerClientCert] = []string{base64.StdEncoding.EncodeToString(in.TLS.PeerCertificates[0].Raw)}
	}

	// ANCM forwards these unchanged; ReverseProxy's Rewrite mode drops them.
	if v, ok := in.Header["X-Forwarded-Host"]; ok {
		out.Header["X-Forwarded-Host"] = v
	}
	if v, ok := in.Header["Forwarded"]; ok {
		out.Header["Forwarded"] = v
	}
	// in.RemoteAddr is "ip:port", IPv6 bracketed ("[::1]:5017"), which is
	// exactly ANCM's X-Forwarded-For entry (port included).
	vals[1] = appendList(in.Header["X-Forwarded-For"], in.RemoteAddr)
	out.Header["X-Forwarded-For"] = vals[1:2:2]
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	vals[2] = appendList(in.Header["X-Forwarded-Proto"], proto)
	out.Header["X-Forwarded-Proto"] = vals[2:3:3]

	// ANCM V2 strips it on WebSocket upgrades (dotnet/aspnetcore#58846).
	// Gatehouse could relay permessage-deflate, but the app then sees the
	// same handshake behind Gatehouse as behind IIS.
	if strings.EqualFold(out.Header.Get("Upgrade"), "websocket") {
		delete(out.Header, "Sec-Websocket-Extensions")
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

// modifyResponse applies the response header rules (reference §3.4).
func modifyResponse(res *http.Response) error {
	for k := range res.Header {
		if hasModulePrefix(k) {
			delete(res.Header, k) // the token must never reach a client
		}
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		if ex := exchangeOf(res.Request); ex != nil && ex.conn != nil {
			res.Header["Connection"] = ex.conn
		}
	}
	return nil
}

// errorHandler is ReverseProxy's ErrorHandler: every failure after the lease
// was acquired goes through it to WriteError.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	pid := 0
	if ex := exchangeOf(r); ex != nil {
		pid = ex.lease.PID
		r = ex.in
	}
	h.writeError(w, r, err, pid)
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error, pid int) {
	hide := false
	if status, sub := StatusFor(err); sub == 5 || status == http.StatusServiceUnavailable {
		local := false
		if m := h.ErrorMode; m != config.ErrorModeDetailed && m != config.ErrorModeCustom {
			local = fromMachine(w, r) // only DetailedLocalOnly asks
		}
		hide = !h.ErrorMode.ShowDetails(local)
	}
	WriteError(w, r, err, ErrorOptions{
		DisableStartUpErrorPage: h.DisableStartUpErrorPage,
		HideDetails:             hide,
		RequestTimeout:          h.RequestTimeout,
		PID:                     pid,
		Log:                     h.log,
	})
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

// bufferPool hands ReverseProxy 32 KB copy buffers. It stores array
// pointers, so Put does not allocate.
type bufferPool struct{}

const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= bufferSize {
		buffers.Put((*[bufferSize]byte)(b[:bufferSize]))
	}
}
