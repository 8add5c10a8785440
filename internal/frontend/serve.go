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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/reqtarget"
)

// reqState is the per-request state of the front door, pooled so that the
// request path does not allocate for it.
type reqState struct {
	rw   respWriter
	body countingBody
	req  pipeline.Request
	done pipeline.Done

	// How the request came in, set by the way in before serve:
	// ctx ends when the client goes away (closes the connection, resets
	// the stream) or the connection is closed by a shutdown.
	ctx context.Context
	// src is the request body as read from the client; nil when there is
	// none.
	src io.Reader
	// ctl sets the client connection's read deadline (the body timeout).
	ctl readDeadliner
	// stream is set while the request counts against the requests in
	// flight over HTTP/2 and HTTP/3 (Server.streams; see leaveStreams).
	stream bool
	// ahead holds what h3BodyEnded read of an HTTP/3 body.
	ahead [1]byte
}

var statePool = sync.Pool{New: func() any { return new(reqState) }}

// release resets st and gives it back to the pool.
func (st *reqState) release() {
	st.reset()
	statePool.Put(st)
}

// reset clears st for its next request.
func (st *reqState) reset() {
	st.rw = respWriter{}
	st.body = countingBody{}
	st.ctx, st.src, st.ctl, st.stream = nil, nil, nil, false
	st.req.Reset()
}

// ServeHTTP is the handler of every http.Server and HTTP/3 server of the
// listener: limits, host routing, redirect, the app, then the access log.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.srv.serveHTTP(l, w, r, 0)
}

// serveHTTP is the net/http way through the front door: the request is
// described as a pipeline.Request and run through serve. sendEach, when
// not 0, bounds each write of the answer (HTTP/3: see respWriter.sendEach).
func (s *Server) serveHTTP(l *listener, w http.ResponseWriter, r *http.Request, sendEach time.Duration) {
	start := time.Now()
	if r.TLS == nil && l.scheme == "https" {
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	// The HTTP/3 writer (h3Writer), also under a tunnel's (tunnelIdle);
	// not net/http's, whose end is sent after the handler returns.
	fin, _ := w.(answerFinisher)
	w, r, stop, ok := s.enterStream(w, r)
	if !ok {
		return
	}
	st := statePool.Get().(*reqState)
	// Counted in by enterStream, counted out by serve before it sends the
	// answer's end (leaveStreams), or by leaveStream after a panic (st is
	// then not given back).
	st.stream = r.ProtoMajor >= 2
	defer func() { s.leaveStream(r, stop, st) }()
	ci := fillRequest(&st.req, l, r)
	st.ctx = r.Context()
	if st.req.ContentLength != 0 {
		rc := http.NewResponseController(w)
		st.src, st.ctl = r.Body, rc
		// The app may answer while it still reads the body (an echo, a
		// stream): net/http's HTTP/1 server would otherwise stop the body
		// once the response head is flushed. Other protocols are always
		// full duplex; asking their writers costs an error built with
		// fmt on every request (HTTP/3 requests have an unknown length).
		if r.ProtoMajor == 1 {
			_ = rc.EnableFullDuplex()
		} else if st.req.ContentLength < 0 && r.ProtoMajor == 3 && r.Method != http.MethodConnect {
			st.h3BodyEnded(rc)
		}
	}
	s.serve(l, st, w, serveOpts{start: start, over: ci != nil && ci.over, noAltSvc: r.ProtoMajor >= 3, sendEach: sendEach, fin: fin})
	if st.src != nil && r.ProtoMajor == 1 && !st.rw.hijacked {
		// With full duplex on, net/http's HTTP/1 server reads a body the
		// handler left unread (serve does when it answers before the app,
		// or the app answered without it) only after the handler
		// returned, in a Close that starts its background read of the
		// connection after it stopped the last one, and then panics
		// reading the next request ("invalid concurrent Body.Read call",
		// golang/go#68560). Closed here, while the handler runs, that
		// background read is stopped as it should. (A hijacked
		// connection's body must not be used: net/http's Hijacker.)
		_ = r.Body.Close()
	}
	st.leaveStreams(s) // answered without an application (no site, ACME)
	st.release()
	st = nil
}

// longAgo is a read deadline that has passed: a read with it set does not
// wait.
var longAgo = time.Unix(1, 0)

// h3BodyEnded tells apart, for st's HTTP/3 request whose head gave no
// length (st.src is its body, rc its writer's controller), a request whose
// stream has already ended from one whose body is still coming. A HEADERS
// frame does not say whether a body follows, as HTTP/2's END_STREAM flag
// does: quic-go gives such a request a length of -1, which would reach the
// app as an empty chunked body. Every client ends the stream of a request
// without a body with its HEADERS frame or right after it, so a request
// whose stream ended (its FIN was received) is given the length 0 the
// same request has over HTTP/1.1 and HTTP/2, and no body. A request whose
// body is still coming keeps streaming: the body is looked at with a read
// that does not wait (its deadline has passed), never waited for.
//
// Whatever that read returned reaches the app first, in order (quic-go
// v0.65's stream returns no bytes once its deadline has passed, only the
// FIN it already had). A FIN that came in a STREAM frame of its own, after
// the one that ended the HEADERS frame, is taken in by the stream's first
// read, which still fails for the deadline: the second read sees it.
//
//go:noinline
func (st *reqState) h3BodyEnded(rc *http.ResponseController) {
	if rc.SetReadDeadline(longAgo) != nil {
		return
	}
	n, err := st.src.Read(st.ahead[:])
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		n, err = st.src.Read(st.ahead[:])
	}
	_ = rc.SetReadDeadline(time.Time{})
	switch {
	case n == 0 && err == io.EOF:
		st.req.ContentLength, st.src, st.ctl = 0, nil, nil
	case n == 0 && errors.Is(err, os.ErrDeadlineExceeded):
		// The body is still coming: it streams from the client to the app.
	default:
		st.src = &readAhead{b: st.ahead[:n], err: err, r: st.src}
	}
}

// readAhead is a body of which b, then err (when not nil), were read
// ahead of the app: its reads return them first, then read on from r.
type readAhead struct {
	b   []byte
	err error
	r   io.Reader
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if len(ra.b) > 0 {
		n := copy(p, ra.b)
		ra.b = ra.b[n:]
		return n, nil
	}
	if ra.err != nil {
		return 0, ra.err
	}
	return ra.r.Read(p)
}

// serveHTTP3 is serveHTTP for a request of the HTTP/3 server, whose
// writer is w: the answer is written through an h3Writer, which ends it
// (trailers, the stream's FIN) before the request is reported. An answer
// serve did not end (no site, ACME, refused beyond maxConnections) is
// ended here; one abandoned by a panic is reset.
func (s *Server) serveHTTP3(l *listener, w http.ResponseWriter, r *http.Request, sendEach time.Duration) {
	hw := newH3Writer(w, r)
	defer hw.abort()
	s.serveHTTP(l, hw, r, sendEach)
	_ = hw.Finish()
}

// serveOpts are the facts about a request that serve cannot read from the
// pipeline.Request.
type serveOpts struct {
	start    time.Time // when the request head had been read
	over     bool      // the connection was accepted beyond maxConnections
	noAltSvc bool      // the request came over HTTP/3: no Alt-Svc
	// sendEach bounds each write of the answer to the client (0: the
	// protocol's own mechanism, or none; see respWriter.sendEach).
	sendEach time.Duration
	// fin is the server's writer as an answerFinisher, which serve has
	// end the answer (respWriter.finishAnswer); nil when it is none (the
	// server ends the answer after serve).
	fin answerFinisher
}

// serve is the one sequence both ways in run: the request described in
// st.req (all but Site) is routed by host, checked against the limits,
// redirected to https if the site wants it, run through its application's
// stages and forwarded to the application; every finished request is
// reported to the observers. w is the client's response. The
// application's settings in force (pipeline.App) are taken once, when the
// request is routed to it, and that one snapshot serves the whole request:
// limits, stages, outbound stages, forwarding and the done report.
func (s *Server) serve(l *listener, st *reqState, w http.ResponseWriter, o serveOpts) {
	tab := l.routes.Load()
	pr := &st.req
	if l.scheme == "http" && s.acme.serveHTTP01(st.ctx, w, pr) {
		return // an ACME http-01 validation, answered before routing
	}
	site, ok := tab.hosts.lookup(pr.Host)
	if !ok {
		s.noSite(l, pr, w)
		return
	}
	pr.Site, pr.Router = site.name, site
	st.rw = respWriter{ResponseWriter: w, srv: s, sendEach: o.sendEach}
	var (
		app *appRoute
		cur pipeline.App // app's settings in force, nil without app
	)
	defer func() { st.finish(site, app, cur, o.start) }()
	rw := &st.rw
	if tab.altSvc != "" && !o.noAltSvc {
		w.Header().Set("Alt-Svc", tab.altSvc)
	}
	if o.over {
		s.refuse(rw, pr, "limits", http.StatusServiceUnavailable, "maxConnections")
	} else if reason := pipeline.Validate(pr); reason != "" {
		s.refuse(rw, pr, "request", http.StatusBadRequest, reason)
	} else {
		if app = site.match(pr.Path); app != nil {
			cur = app.app.Current()
		}
		// The app's outbound stages (custom headers) also run over the
		// front door's answers for it (limits, redirects, its stages'
		// refusals).
		rw.req = pr
		rw.use(cur)
		s.serveApp(l, st, site, &app, &cur)
	}
	// The answer's end is sent before the report (deferred above) takes
	// the request's duration, as IIS's time-taken runs to the last byte
	// handed to the network; the request ended before it (EndRequest).
	// Not after a panic: the answer is then abandoned, not ended.
	rw.ended()
	st.leaveStreams(s)
	rw.finishAnswer(o.fin, st.ctx)
}

// leaveStreams counts st's request out of the requests in flight, if it
// counts in them: once its answer is written, before the answer's end is
// sent, as the end observers count it out.
func (st *reqState) leaveStreams(s *Server) {
	if st.stream {
		st.stream = false
		s.streams.Add(-1)
	}
}

// serveApp is the rest of serve, once the request is known to be for
// site: limits, redirect, stages, the app. It sets *app and *cur to the
// application that takes the request and its settings (a stage may
// reroute it), for serve's report.
//
// It is a function of its own so that the compiler open-codes serve's
// and its deferred calls (inline at each return): with the defers of both
// and all their returns in one function, it ran them through the
// runtime's deferreturn, which walks the stack (~1,000 instructions a
// request).
func (s *Server) serveApp(l *listener, st *reqState, site *siteRoute, app **appRoute, cur *pipeline.App) {
	pr, rw := &st.req, &st.rw
	defer rw.end(st.ctx)
	lim := site.lim.of(*cur)
	if res := lim.check(pr); res != nil {
		pipeline.WriteResult(rw, pr, res, s.log)
		return
	}
	if site.redirect && l.scheme == "http" {
		redirectHTTPS(rw, pr, site.httpsPort)
		return
	}
	if *app == nil {
		pipeline.WriteStatus(rw, pr, http.StatusNotFound)
		return
	}
	if site.global != nil {
		next, ok := s.runGlobal(site, *app, pr, rw)
		if next != *app {
			*app, *cur = next, next.app.Current()
			rw.use(*cur)
		}
		if !ok {
			return
		}
	}
	var ok bool
	if *app, *cur, ok = s.runStages(site, *app, *cur, pr, rw); !ok {
		return
	}
	rw.use(*cur)
	var body io.Reader
	if pr.ContentLength != 0 && st.src != nil {
		body = st.requestBody(&lim)
	}
	(*cur).Forward(st.ctx, rw, pr, body)
}

// The ways out of serve below are functions of their own so that their
// locals (log arguments, a Result) do not enlarge serve's stack frame,
// which every request's goroutine carries while the app is asked: a
// larger frame makes the runtime copy more HTTP/2 handler stacks to a
// bigger size. Those the compiler would inline back into serve are
// marked go:noinline.

// noSite answers a request for a host no binding of l serves: 404, and
// nothing about other sites.
func (s *Server) noSite(l *listener, pr *pipeline.Request, w http.ResponseWriter) {
	s.log.Debug("no site for host", "listener", l.key, "host", pr.Host, "remote", pr.RemoteAddr)
	pipeline.WriteStatus(w, pr, http.StatusNotFound)
}

// refuse answers pr with status before it reaches the stages, and closes
// the connection after the answer.
//
//go:noinline
func (s *Server) refuse(w http.ResponseWriter, pr *pipeline.Request, stage string, status int, reason string) {
	pipeline.WriteResult(w, pr, &pipeline.Result{Stage: stage, Status: status, Reason: reason, Close: true}, s.log)
}

// requestBody returns the request's body as the app reads it: st.src,
// bounded by lim.
//
//go:noinline
func (st *reqState) requestBody(lim *limits) io.Reader {
	st.body = countingBody{rc: st.src, ctl: st.ctl, timeout: lim.bodyTimeout}
	if st.req.ContentLength < 0 {
		st.body.max = lim.maxBody // a declared length was checked above
	}
	if st.req.Method == http.MethodConnect {
		// A tunnel (extended CONNECT, the one CONNECT Validate lets
		// through: a WebSocket over HTTP/2 or HTTP/3) is an upgraded
		// connection, not a request body: as on a WebSocket over
		// HTTP/1.1, neither maxAllowedContentLength nor the body
		// timeout applies; the idle timeout of upgraded connections
		// (tunnelIdle) ends a quiet one.
		st.body.max, st.body.timeout = 0, 0
	}
	return &st.body
}

// maxReroutes bounds how often URL Rewrite may send a request on to
// another application, so rules that rewrite back and forth end.
const maxReroutes = 4

// runStages runs the inbound stages of app (whose settings in force are
// cur) over pr. A rewrite to a path of another application of the site
// runs that application's stages in turn, once the end observers of the
// one it leaves were told the request ended there (respWriter.leave). It
// returns the application that takes the request with its settings, or
// false when a stage answered it.
func (s *Server) runStages(site *siteRoute, app *appRoute, cur pipeline.App, pr *pipeline.Request, w *respWriter) (*appRoute, pipeline.App, bool) {
	for range maxReroutes {
		pr.AppPath, pr.AppDir = app.path, app.dir
		if res := cur.Chain().Serve(pr); res != nil {
			pipeline.WriteResult(w, pr, res, s.log)
			return app, cur, false
		}
		if !pr.Rewritten() || pr.Upstream != "" {
			return app, cur, true // an upstream is reached through app's forwarder
		}
		next := site.match(pr.Path)
		if next == nil {
			pipeline.WriteStatus(w, pr, http.StatusNotFound)
			return app, cur, false
		}
		if next == app {
			return app, cur, true
		}
		// The request leaves app, whose stages counted it in (Dynamic IP
		// Restrictions): it is not app's to answer, and app's observers
		// never see its end.
		w.leave(cur.Chain())
		app, cur = next, next.app.Current()
	}
	pipeline.WriteResult(w, pr, pipeline.Refuse("rewrite", http.StatusInternalServerError, 0,
		"rewritten to another application more than "+strconv.Itoa(maxReroutes)+" times"), s.log)
	return app, cur, false
}

// outStages returns cur's chain when it has outbound stages, else nil.
func outStages(cur pipeline.App) *pipeline.Chain {
	if cur == nil {
		return nil
	}
	if c := cur.Chain(); c.HasOut() {
		return c
	}
	return nil
}

// describe fills what both ways in describe alike, once pr.Header holds
// the client's header: the path the stages, routing and the app see,
// cleaned (pipeline.CleanPath), so no two of them can disagree about which
// application a path belongs to; the client's address (peer's, or, when
// the peer is a trusted proxy, the one its X-Forwarded-For names); the
// scheme.
func (l *listener) describe(pr *pipeline.Request, rawPath string, peer netip.Addr) {
	pr.Path = pipeline.CleanPath(rawPath)
	pr.ClientIP = peer
	if t := l.routes.Load().trusted; len(t) > 0 {
		pr.ClientIP = forwardedClient(peer, headerValues(pr.Header, "X-Forwarded-For"), t)
	}
	pr.Scheme = l.scheme
}

// headerValues returns the values of the header field name (canonical
// form) of h.
func headerValues(h pipeline.Header, name string) []string {
	if hh, ok := h.(pipeline.HTTPHeader); ok {
		return hh[name]
	}
	var vs []string
	h.Values(name, func(v string) bool { vs = append(vs, v); return true })
	return vs
}

// fillRequest describes r, a request of the net/http servers, for serve.
// It returns the connection's connInfo (nil: none).
func fillRequest(pr *pipeline.Request, l *listener, r *http.Request) *connInfo {
	pr.Method, pr.Host, pr.Proto, pr.RemoteAddr = r.Method, r.Host, r.Proto, r.RemoteAddr
	pr.RawQuery = r.URL.RawQuery
	if q, ok := reqtarget.Escape(pr.RawQuery); ok {
		// HTTP/3's query as received (Go's URL parser keeps it raw): its
		// bytes beyond ASCII and '#' percent-encoded, as the HTTP/1.1
		// parser and the HTTP/2 server write them, so they never reach
		// the app's request line raw. A space or control byte is left for
		// pipeline.Validate to refuse.
		pr.RawQuery = q
	}
	if isTunnel(r) && r.ProtoMajor == 3 {
		// quic-go's HTTP/3 server puts an extended CONNECT's protocol in
		// Proto; the stages and the app see it as HTTP/2 gives it, in the
		// ":protocol" pseudo-header, so one check judges both.
		r.Header.Set(":protocol", r.Proto)
		pr.Proto = "HTTP/3.0"
	}
	pr.Header = pipeline.HTTPHeader(r.Header)
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	a := ci.addrsOf(r)
	l.describe(pr, requestPath(r), a.peer)
	pr.LocalAddr = a.local
	pr.ContentLength = r.ContentLength
	if r.Body == nil || r.Body == http.NoBody {
		pr.ContentLength = 0
	}
	if r.Trailer != nil {
		// The trailers the client announced (Trailer), their values
		// filled once the body is read: by net/http in place, by
		// h3TrailerBody for quic-go's HTTP/3 server, which gives the
		// request a new map instead.
		pr.Trailer = pipeline.HTTPHeader(r.Trailer)
		if r.ProtoMajor == 3 && r.Body != nil && r.Body != http.NoBody {
			r.Body = &h3TrailerBody{ReadCloser: r.Body, r: r, announced: r.Trailer}
		}
	}
	pr.TLS = r.TLS
	if ci != nil {
		pr.Conn = &ci.conn
	}
	return ci
}

// h3TrailerBody is the body of r, an HTTP/3 request that announced
// trailers: once it is read to its end, the announced trailers get the
// values the client sent, as net/http's and the HTTP/2 server's do, for
// the pipeline's request (whose Trailer is announced). quic-go v0.65
// reads the trailing HEADERS frame in a body Read and then sets
// r.Trailer to a map of its own, of every field received (server_conn.go):
// a field the client did not announce is dropped, as over HTTP/2. Both
// happen on the goroutine that reads the body.
type h3TrailerBody struct {
	io.ReadCloser
	r         *http.Request
	announced http.Header
}

func (b *h3TrailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && b.announced != nil {
		if got := b.r.Trailer; got != nil {
			for k := range b.announced {
				if vs, ok := got[k]; ok {
					b.announced[k] = vs
				}
			}
		}
		b.announced = nil
	}
	return n, err
}

// requestPath is r's path as describe takes it: escaped, as Go's URL
// parser gives it, except for a target that holds a space or control
// byte, which Go's parser would escape (HTTP/3's :path): its path is
// kept as received, so that pipeline.Validate refuses it as the HTTP/1.1
// parser and the HTTP/2 server do.
func requestPath(r *http.Request) string {
	raw, _, _ := strings.Cut(r.RequestURI, "?")
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return raw
		}
	}
	return r.URL.EscapedPath()
}

// connInfo is attached to each accepted connection's context.
type connInfo struct {
	over bool // accepted beyond Limits.MaxConnections
	// conn is the connection's pipeline state (pipeline.Request.Conn).
	conn pipeline.Conn
	// addrs are the connection's addresses as its requests describe them,
	// worked out by its first request (addrsOf) for all that follow: an
	// HTTP/2 connection's requests would otherwise each parse the peer's
	// and format the local address.
	addrs atomic.Pointer[connAddrs]
}

// connAddrs are a connection's addresses, as a request describes them.
type connAddrs struct {
	remote string     // the request's RemoteAddr they were worked out from
	peer   netip.Addr // remote's address, unmapped; invalid if it is none
	local  string     // the server's address (http.LocalAddrContextKey); "" if unknown
}

// addrsOf returns the addresses of r's connection, whose connInfo is ci
// (nil: none, they are worked out for r alone).
func (ci *connInfo) addrsOf(r *http.Request) connAddrs {
	if ci != nil {
		if a := ci.addrs.Load(); a != nil && a.remote == r.RemoteAddr {
			return *a
		}
	}
	a := connAddrs{remote: r.RemoteAddr}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a.peer = ap.Addr().Unmap()
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		a.local = la.String()
	}
	if ci != nil {
		kept := a // only this copy escapes: without ci, a stays on the stack
		ci.addrs.Store(&kept)
	}
	return a
}

type connInfoKey struct{}

// redirectHTTPS answers with a redirect to the same URL over https on port
// (0 or 443: none in the URL): 301 for GET and HEAD, else 308.
func redirectHTTPS(w http.ResponseWriter, pr *pipeline.Request, port int) {
	host := hostOnly(pr.Host)
	if port != 0 && port != 443 {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
	}
	code := http.StatusPermanentRedirect
	if pr.Method == http.MethodGet || pr.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	// http.Redirect reads only the method of an absolute target's request.
	http.Redirect(w, &http.Request{Method: pr.Method}, "https://"+host+pr.RequestURI(), code)
}
