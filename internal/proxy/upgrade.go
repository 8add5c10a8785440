package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// upgradeExchange is one Upgrade request's state on the ReverseProxy path,
// reachable from the outbound request's context by the ReverseProxy hooks.
//
// It is itself that context: it embeds the client request's context and
// answers Value(upgradeKey{}) with itself.
type upgradeExchange struct {
	context.Context // the client request's context

	h     *Handler
	in    *http.Request
	pr    *pipeline.Request
	lease *upstream.Lease // the current lease; replaced on retry
	// conn holds the app's response Connection values when
	// ForwardResponseConnectionHeader is set (ReverseProxy strips them
	// before ModifyResponse sees the response).
	conn []string
	// w is the client's ResponseWriter, flushing after every write.
	w flushWriter
}

type upgradeKey struct{}

// Value returns ex for upgradeKey{}, else the client context's value.
func (ex *upgradeExchange) Value(key any) any {
	if _, ok := key.(upgradeKey); ok {
		return ex
	}
	return ex.Context.Value(key)
}

// serveUpgrade forwards an Upgrade request (WebSocket) with ReverseProxy,
// which relays the connection once the app switched protocols.
func (h *Handler) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	lease, err := h.Backend.Acquire(r.Context())
	if err != nil {
		h.writeError(w, r, err, 0)
		return
	}
	ex := &upgradeExchange{Context: r.Context(), h: h, in: r, pr: pipeline.RequestFrom(w), lease: lease, w: flushWriter{w}}
	// ReverseProxy.ServeHTTP returns only after the body copy or the
	// upgraded connection has finished, so this is the right moment. A
	// deferred call also covers its panic(http.ErrAbortHandler) when the
	// body copy fails midway.
	defer func() { ex.lease.Release() }()
	h.rp.ServeHTTP(&ex.w, r.WithContext(ex))
}

func upgradeExchangeOf(r *http.Request) *upgradeExchange {
	ex, _ := r.Context().Value(upgradeKey{}).(*upgradeExchange)
	return ex
}

// inboundOf describes an upgrade request for the header rules.
func inboundOf(r *http.Request, pr *pipeline.Request) *inbound {
	return &inbound{
		method: r.Method, host: r.Host, hdr: r.Header, remoteAddr: r.RemoteAddr, tls: r.TLS,
		pr: pr, upgrade: upgradeType(r.Header),
	}
}

// rewrite applies the request header rules (appendRequestFields, the same
// as the lean client's) to the outbound upgrade request, rebuilding its
// header from the client's.
func rewrite(pr *httputil.ProxyRequest) {
	ex := upgradeExchangeOf(pr.Out)
	in, out := pr.In, pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = ex.lease.Addr
	// ReverseProxy re-encodes queries it cannot parse (";", bad escapes);
	// ANCM forwards the raw query unchanged, and so do we.
	out.URL.RawQuery = in.URL.RawQuery
	// out.Host is left as in.Host: ANCM preserves the Host header.
	out.Header = http.Header{}
	ib := inboundOf(in, ex.pr)
	if ex.h.ForwardIdentity && ex.pr != nil {
		ib.identity = ex.pr.Identity
	}
	appendRequestFields(new(requestFields), headerSink(out.Header), ib, ex.lease.Token)
}

// modifyResponse applies the response header rules (reference §3.4).
func modifyResponse(res *http.Response) error {
	for k := range res.Header {
		if hasModulePrefix(k) {
			delete(res.Header, k) // the token must never reach a client
		}
	}
	ex := upgradeExchangeOf(res.Request)
	if ex == nil {
		return nil
	}
	pipeline.SetUpstream(ex.w.ResponseWriter, ex.lease.PID, time.Now())
	if res.StatusCode != http.StatusSwitchingProtocols && ex.conn != nil {
		res.Header["Connection"] = ex.conn
	}
	return nil
}

// errorHandler is ReverseProxy's ErrorHandler: every failure after the lease
// was acquired goes through it to WriteError.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	pid := 0
	if ex := upgradeExchangeOf(r); ex != nil {
		pid = ex.lease.PID
		r = ex.in
		pipeline.SetUpstream(ex.w.ResponseWriter, pid, time.Time{})
	}
	h.writeError(w, r, err, pid)
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error, pid int) {
	WriteError(w, r, err, h.errorOptions(w, r, err, pid))
}

// roundTripper is the ReverseProxy's Transport: it sends the request to the
// leased process, and retries once on a new lease when the rules allow.
type roundTripper struct{ h *Handler }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := upgradeExchangeOf(req)
	if ex == nil {
		return nil, errors.New("proxy: request without a lease") // only if used outside ServeHTTP
	}
	h := rt.h
	res, err := h.upgrades.RoundTrip(req)
	if err != nil && h.RetryIdempotent && ex.retryable(err) {
		old := ex.lease
		h.log.Warn("retrying request on a new process",
			"pid", old.PID, "method", ex.in.Method, "path", ex.in.URL.Path, "err", err)
		old.Release()
		lease, aerr := h.Backend.Acquire(req.Context())
		if aerr != nil {
			return nil, aerr // ex.lease stays the old one; Release again is a no-op
		}
		ex.lease = lease
		req = req.Clone(req.Context())
		req.URL.Host = lease.Addr
		req.Header[headerToken] = []string{lease.Token}
		res, err = h.upgrades.RoundTrip(req)
	}
	if err != nil {
		return nil, &BackendError{PID: ex.lease.PID, Err: err}
	}
	if h.ForwardResponseConnectionHeader && res.StatusCode != http.StatusSwitchingProtocols {
		ex.conn = res.Header["Connection"]
		if res.Close && ex.conn == nil {
			// The Transport consumes "Connection: close" into res.Close.
			ex.conn = connectionClose
		}
	}
	return res, nil
}

// retryable reports whether a failed upgrade round trip may be repeated on
// a new process: the request is bodiless and the process died.
func (ex *upgradeExchange) retryable(err error) bool {
	e := exchange{ctx: ex.in.Context(), lease: ex.lease, in: *inboundOf(ex.in, nil)}
	e.in.contentLength = ex.in.ContentLength
	return e.retryable(err)
}
