// Package proxy forwards client requests to an app process, the way ANCM's
// out-of-process forwarding handler does: HTTP/1.1 to the process's loopback
// port, with the pairing token and X-Forwarded-For/-Proto added and client
// MS-ASPNETCORE* headers removed.
//
// Handler.Forward is the one way a request reaches the app, from every
// protocol the front door serves. It forwards with its own HTTP/1.1
// client: the request is written and the response read on the caller's
// goroutine over pooled keep-alive connections per process address (no
// Transport goroutines, no header map copies); a WebSocket upgrade the app
// accepts is relayed over the same client's connection. It adds what ANCM
// needs: a lease on a ready process per request, the ANCM header rules
// (written once, appendRequestFields, for headers and trailers alike),
// requestTimeout as an inactivity timeout, one retry of safe requests whose
// process died under them (and of safe requests on a stale keep-alive
// connection), and ANCM-style error pages through one funnel,
// answerError.
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
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
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

// Handler forwards each request to a process leased from Backend: the
// forwarder of one app.
//
// The zero value is not usable: Backend must be set. Fields must not be
// changed after the first call to Forward; the Handler must not be copied
// after first use. It is safe for concurrent use.
type Handler struct {
	// Backend gives out the processes to forward to. Required.
	Backend Backend

	// RequestTimeout is ANCM's requestTimeout (default there 2 minutes): an
	// inactivity timeout, not a deadline. It bounds connecting to the app,
	// each write of the request to it, the wait for response headers, and
	// each read of the response body, each with a fresh budget. Expiry may
	// come up to RequestTimeout/8 (at most 1 s) late: deadlines are moved
	// lazily. It does not apply to an upgraded (WebSocket) connection once
	// the app switched protocols. 0 or
	// negative means no timeout (connecting is then bounded by 30 s).
	RequestTimeout time.Duration

	// DisableStartUpErrorPage is disableStartUpErrorPage: a start failure
	// gives 502 with an empty body instead of the 502.5 page.
	DisableStartUpErrorPage bool

	// ErrorMode is <httpErrors errorMode>: who sees the details of the
	// 502.5 page (reason, command, exit status, app output) and of the 503
	// rapid-fail page (the last exit). The zero value is IIS's default,
	// DetailedLocalOnly: only requests from the machine itself (see
	// FromMachine) see them; everyone else gets the page without them.
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
	// the authentication stage put on the request (pipeline.Request.Identity)
	// goes to the app in the MS-ASPNETCORE-USER, -AUTHTYPE, -GROUPS and
	// -GROUPSIDS headers (see identity.go). When false, or for an anonymous request,
	// none of them is sent.
	ForwardIdentity bool

	// H2C speaks HTTP/2 with prior knowledge to the app instead of
	// HTTP/1.1 (the app's protocol "h2c"; see h2c.go): for gRPC services.
	// The header rules, the error funnel and the retries are the same.
	H2C bool

	// GRPCWeb, with H2C, translates gRPC-Web requests into gRPC to the app
	// and the answers back (the handlerSetting grpcWeb; see grpcweb.go).
	GRPCWeb bool

	// Log receives one line per failed request (app attributes should be
	// added by the caller with Log.With). nil discards.
	Log *slog.Logger

	once sync.Once
	pool *connPool // keep-alive connections to the app processes
	h2   *h2Pool   // HTTP/2 connections to them, with H2C
	log  *slog.Logger
	// afterFunc, when non-nil, starts the timer of each h2c exchange
	// (requestTimeout, grpc-timeout) in place of time.AfterFunc. Tests:
	// to hold it back, as a loaded machine may.
	afterFunc func(time.Duration, func()) *time.Timer
}

// CloseIdleConnections closes the idle keep-alive connections to app
// processes. Call it when the app is stopped or recycled, and on shutdown.
// Connections in use at the time are closed when their request ends,
// unless the Handler is used again meanwhile.
func (h *Handler) CloseIdleConnections() {
	h.once.Do(h.init)
	h.pool.closeIdle()
	if h.h2 != nil {
		h.h2.closeIdle()
	}
}

func (h *Handler) init() {
	h.log = h.Log
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.pool = newConnPool(h.RequestTimeout)
	if h.H2C {
		h.h2 = newH2Pool(h.RequestTimeout)
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
	return len(k) >= len(headerPrefix) && h1.FoldIs(k[:len(headerPrefix)], "ms-aspnetcore")
}

// errorOptions says how to answer err for the request r.
func (h *Handler) errorOptions(r *pipeline.Request, err error, pid int) ErrorOptions {
	hide := false
	if status, sub := StatusFor(err); sub == 5 || status == http.StatusServiceUnavailable {
		local := false
		if m := h.ErrorMode; m != config.ErrorModeDetailed && m != config.ErrorModeCustom {
			local = FromMachine(r) // only DetailedLocalOnly asks
		}
		hide = !h.ErrorMode.ShowDetails(local)
	}
	var grpc string
	if r != nil && r.Header != nil {
		grpc = pages.GRPCAnswerType(r.Header.Get("Content-Type"))
	}
	return ErrorOptions{
		DisableStartUpErrorPage: h.DisableStartUpErrorPage,
		HideDetails:             hide,
		RequestTimeout:          h.RequestTimeout,
		PID:                     pid,
		Log:                     h.log,
		GRPC:                    grpc,
	}
}

// bufferSize is the size of the copy buffers: one app read, one client
// write per 64 KiB.
const bufferSize = 64 << 10

// buffers holds the copy buffers. It stores array pointers, so Put does not
// allocate.
var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}
