package frontend

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// SubstatusSetter is implemented by the ResponseWriter Gatehouse hands to
// apps (reach it through Unwrap chains). The proxy calls it before writing a
// module status such as 502.3 or 502.5 so the access log shows the substatus.
type SubstatusSetter interface {
	SetSubstatus(n int)
}

// reqState is the per-request state of the front door, pooled so that the
// request path does not allocate for it.
type reqState struct {
	rw   respWriter
	body countingBody
	req  pipeline.Request
	done pipeline.Done
	nh   httpIngress
}

var statePool = sync.Pool{New: func() any { return new(reqState) }}

// release resets st and gives it back to the pool.
func (st *reqState) release() {
	st.rw = respWriter{}
	st.body = countingBody{}
	st.nh = httpIngress{}
	st.req.Reset()
	statePool.Put(st)
}

// ingress is what differs between the two ways into the front door (the
// net/http servers and the lean HTTP/1.1 loop): how a request that passed
// routing, limits and the stages reaches its application.
type ingress interface {
	// forward hands the request, as the stages left it in st.req, to
	// app's App, answering through st.rw. lim are the request's limits.
	forward(st *reqState, app *appRoute, lim limits)
}

// ServeHTTP is the handler of every http.Server and HTTP/3 server of the
// listener: limits, host routing, redirect, the app, then the access log.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.srv.serveHTTP(l, w, r)
}

// serveHTTP is the net/http way through the front door: the request is
// described as a pipeline.Request and run through serve.
func (s *Server) serveHTTP(l *listener, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.TLS == nil && l.scheme == "https" {
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	st := statePool.Get().(*reqState)
	fillRequest(&st.req, l, r)
	st.nh = httpIngress{r: r, w: w}
	s.serve(l, st, w, serveOpts{start: start, over: over(r), noAltSvc: r.ProtoMajor >= 3}, &st.nh)
	st.release()
}

// serveOpts are the facts about a request that serve cannot read from the
// pipeline.Request.
type serveOpts struct {
	start    time.Time // when the request head had been read
	over     bool      // the connection was accepted beyond maxConnections
	noAltSvc bool      // the request came over HTTP/3: no Alt-Svc
}

// serve is the one sequence both ways in run: the request described in
// st.req (all but Site) is routed by host, checked against the limits,
// redirected to https if the site wants it, run through its application's
// stages and handed to the application by in; every finished request is
// reported to the observers. w is the client's response.
func (s *Server) serve(l *listener, st *reqState, w http.ResponseWriter, o serveOpts, in ingress) {
	tab := l.routes.Load()
	pr := &st.req
	site, ok := tab.hosts.lookup(pr.Host)
	if !ok {
		// Unknown host and no default binding: say nothing about other sites.
		s.log.Debug("no site for host", "listener", l.key, "host", pr.Host, "remote", pr.RemoteAddr)
		pages.Status(w, http.StatusNotFound, 0, "")
		return
	}
	pr.Site, pr.Router = site.name, site
	st.rw = respWriter{ResponseWriter: w, srv: s}
	var app *appRoute
	defer func() { st.finish(site, app, o.start, clientGone(in)) }()
	rw := &st.rw
	if tab.altSvc != "" && !o.noAltSvc {
		w.Header().Set("Alt-Svc", tab.altSvc)
	}
	if o.over {
		pipeline.WriteResult(rw, pr, &pipeline.Result{Stage: "limits", Status: http.StatusServiceUnavailable,
			Reason: "maxConnections", Close: true}, s.log)
		return
	}
	if reason := pipeline.Validate(pr); reason != "" {
		pipeline.WriteResult(rw, pr, &pipeline.Result{Stage: "request", Status: http.StatusBadRequest, Reason: reason, Close: true}, s.log)
		return
	}
	app = site.match(pr.Path)
	// The app's outbound stages (custom headers) also run over the front
	// door's answers for it (limits, redirects, its stages' refusals).
	rw.req, rw.out = pr, outStages(app.chain())
	defer rw.closeBody()
	lim := site.lim.of(app)
	if res := lim.check(pr); res != nil {
		pipeline.WriteResult(rw, pr, res, s.log)
		return
	}
	if site.redirect && l.scheme == "http" {
		redirectHTTPS(rw, pr, site.httpsPort)
		return
	}
	if app == nil {
		pages.Status(rw, http.StatusNotFound, 0, "")
		return
	}
	if site.global != nil {
		if app, ok = s.runGlobal(site, app, pr, rw); !ok {
			return
		}
		rw.out = outStages(app.chain())
	}
	if app, ok = s.runStages(site, app, pr, rw); !ok {
		return
	}
	rw.out = outStages(app.chain())
	in.forward(st, app, lim)
}

// httpIngress hands a request of the net/http servers to its App.
type httpIngress struct {
	r *http.Request
	w http.ResponseWriter // the server's, under st.rw
}

// goner is implemented by an ingress that can tell whether the client went
// away (closed the connection, reset the stream) during the request.
type goner interface{ gone() bool }

// clientGone reports whether in's client went away during the request.
func clientGone(in ingress) bool {
	g, ok := in.(goner)
	return ok && g.gone()
}

// gone: net/http cancels the request's context when the client goes.
func (n *httpIngress) gone() bool { return n.r.Context().Err() != nil }

func (n *httpIngress) forward(st *reqState, app *appRoute, lim limits) {
	r, pr := n.r, &st.req
	if pr.Rewritten() || pr.Path != r.URL.EscapedPath() {
		applyRewrite(r, pr) // the app gets the path that was routed
	}
	if r.Body != nil && r.Body != http.NoBody {
		st.body = countingBody{rc: r.Body, timeout: lim.bodyTimeout, ctl: http.NewResponseController(n.w)}
		if r.ContentLength < 0 && lim.maxBody > 0 {
			st.body.rc = http.MaxBytesReader(n.w, r.Body, lim.maxBody)
		}
		r.Body = &st.body
	}
	app.app.ServeHTTP(&st.rw, r)
}

// maxReroutes bounds how often URL Rewrite may send a request on to
// another application, so rules that rewrite back and forth end.
const maxReroutes = 4

// runStages runs app's inbound stages over pr. A rewrite to a path of
// another application of the site runs that application's stages in turn.
// It returns the application that takes the request, or false when a
// stage answered it.
func (s *Server) runStages(site *siteRoute, app *appRoute, pr *pipeline.Request, w http.ResponseWriter) (*appRoute, bool) {
	for range maxReroutes {
		pr.AppPath, pr.AppDir = app.path, app.dir
		if res := app.chain().Serve(pr); res != nil {
			pipeline.WriteResult(w, pr, res, s.log)
			return app, false
		}
		if !pr.Rewritten() {
			return app, true
		}
		next := site.match(pr.Path)
		if next == nil {
			pages.Status(w, http.StatusNotFound, 0, "")
			return app, false
		}
		if next == app {
			return app, true
		}
		app = next
	}
	pipeline.WriteResult(w, pr, pipeline.Refuse("rewrite", http.StatusInternalServerError, 0,
		"rewritten to another application more than "+strconv.Itoa(maxReroutes)+" times"), s.log)
	return app, false
}

// fillRequest describes r for the stages. Path is cleaned
// (pipeline.CleanPath): routing, the stages and the app all see the path
// with dot segments removed, so no two of them can disagree about which
// application a path belongs to.
func fillRequest(pr *pipeline.Request, l *listener, r *http.Request) {
	pr.Method, pr.Host, pr.Proto, pr.RemoteAddr = r.Method, r.Host, r.Proto, r.RemoteAddr
	pr.Path, pr.RawQuery = pipeline.CleanPath(r.URL.EscapedPath()), r.URL.RawQuery
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		pr.ClientIP = ap.Addr().Unmap()
	}
	if t := l.routes.Load().trusted; len(t) > 0 {
		pr.ClientIP = forwardedClient(pr.ClientIP, r.Header["X-Forwarded-For"], t)
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		pr.LocalAddr = a.String()
	}
	pr.Scheme = l.scheme
	pr.Header = pipeline.HTTPHeader(r.Header)
	pr.ContentLength = r.ContentLength
	if r.Body == nil || r.Body == http.NoBody {
		pr.ContentLength = 0
	}
	pr.TLS = r.TLS
	if c, _ := r.Context().Value(connInfoKey{}).(*connInfo); c != nil {
		pr.Conn = &c.conn
	}
}

// applyRewrite makes r the request URL Rewrite left in pr.
func applyRewrite(r *http.Request, pr *pipeline.Request) {
	u := *r.URL
	u.RawPath = pr.Path
	if p, err := url.PathUnescape(pr.Path); err == nil {
		u.Path = p
	}
	if u.EscapedPath() != pr.Path {
		u.RawPath = ""
	}
	u.RawQuery = pr.RawQuery
	r.URL = &u
	r.RequestURI = pr.RequestURI()
}

// over reports whether r came on a connection accepted beyond
// maxConnections.
func over(r *http.Request) bool {
	c, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	return c != nil && c.over
}

// of returns the limits for a request to app: the site's, with those the
// app's web.config sets in their place. It does not allocate.
func (lim *limits) of(app *appRoute) limits {
	l := *lim
	c := app.chain()
	if c == nil || c.Limits == nil {
		return l
	}
	if v := c.Limits.MaxURL; v > 0 {
		l.maxURL = v
	}
	if v := c.Limits.MaxQueryString; v > 0 {
		l.maxQuery = v
	}
	if v := c.Limits.MaxAllowedContentLength; v > 0 {
		l.maxBody = v
	}
	return l
}

// outStages returns c when it has outbound stages, else nil.
func outStages(c *pipeline.Chain) *pipeline.Chain {
	if c.HasOut() {
		return c
	}
	return nil
}

// check applies the site's request limits; it returns nil when the request
// may pass, else the refusal with IIS's status and substatus.
func (lim *limits) check(r *pipeline.Request) *pipeline.Result {
	if lim.maxURL > 0 && len(r.Path) > lim.maxURL {
		return pipeline.Refuse("limits", http.StatusNotFound, 14, "maxUrl")
	}
	if lim.maxQuery > 0 && len(r.RawQuery) > lim.maxQuery {
		return pipeline.Refuse("limits", http.StatusNotFound, 15, "maxQueryString")
	}
	if lim.maxRequestBytes > 0 && requestBytes(r) > lim.maxRequestBytes {
		res := pipeline.Refuse("limits", http.StatusRequestHeaderFieldsTooLarge, 0, "maxRequestBytes")
		res.Close = true // a client that sends this much is not one to keep
		return res
	}
	if lim.maxBody > 0 && r.ContentLength > lim.maxBody {
		res := pipeline.Refuse("limits", http.StatusRequestEntityTooLarge, 0, "maxAllowedContentLength")
		res.Close = true
		return res
	}
	return nil
}

// requestBytes estimates the size of the request line and headers as sent
// on HTTP/1.1 ("Name: value\r\n"); HTTP/2 and HTTP/3 are measured the same
// way so one limit means the same on every protocol.
func requestBytes(r *pipeline.Request) int {
	n := len(r.Method) + len(r.Path) + len(r.RawQuery) + 1 + len(" HTTP/1.1\r\n") + len("Host: \r\n") + len(r.Host) + 2
	switch h := r.Header.(type) { // no closure to allocate
	case pipeline.HTTPHeader:
		for k, vs := range h {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		return n
	case *h1.Header:
		for _, f := range h.Fields {
			n += len(f.Name) + len(f.Value) + 4
		}
		return n
	}
	return n + headerBytes(r.Header)
}

// headerBytes is the size of h's fields as "Name: value\r\n" lines.
func headerBytes(h pipeline.Header) int {
	n := 0
	h.Range(func(k, v string) bool {
		n += len(k) + len(v) + 4
		return true
	})
	return n
}

// finish reports the finished request to the observers: the site's (the
// access log) and the application's. canceled is whether the client went
// away before the request ended (closed the connection, reset the stream): a
// request it left before any answer is reported as 499; one whose answer
// could not be written in full keeps its status. Both are ClientGone.
func (st *reqState) finish(site *siteRoute, app *appRoute, start time.Time, canceled bool) {
	var chain *pipeline.Chain
	if app != nil {
		chain = app.chain()
	}
	if len(site.observers) == 0 && (chain == nil || len(chain.Observers) == 0) {
		return
	}
	status := st.rw.status
	gone := st.rw.writeFailed || canceled && status == 0
	if gone && status == 0 {
		status = statusClientClosedRequest
	}
	if status == 0 {
		if st.rw.hijacked {
			status = http.StatusSwitchingProtocols
		} else {
			status = http.StatusOK
		}
	}
	d := &st.done
	*d = pipeline.Done{
		Request: &st.req, Start: start, Duration: time.Since(start),
		Status: status, Substatus: st.rw.substatus, BytesIn: st.body.n, BytesOut: st.rw.written,
		Upgraded: st.rw.hijacked, PID: st.rw.pid, ClientGone: gone,
	}
	if !st.rw.appHeader.IsZero() {
		d.FirstByte = st.rw.appHeader.Sub(start)
	}
	if app != nil {
		d.App = app.path
	}
	for _, o := range site.observers {
		o.RequestDone(d)
	}
	if chain != nil {
		for _, o := range chain.Observers {
			o.RequestDone(d)
		}
	}
	*d = pipeline.Done{}
}

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

// respWriter records status, substatus and body bytes for the observers,
// runs the app's outbound stages (custom headers, compression) over the
// response, and tracks hijacked connections so shutdown can close them.
type respWriter struct {
	http.ResponseWriter
	srv       *Server
	status    int
	substatus int
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
	if b := w.out.Respond(w.req, code, pipeline.HTTPHeader(w.ResponseWriter.Header()), rawBody{w}); b != (rawBody{w}) {
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

// PipelineRequest returns the request as the stages left it (identity,
// rewritten path), for the forwarder; nil before the app is called.
func (w *respWriter) PipelineRequest() *pipeline.Request { return w.req }

// SetSubstatus records the IIS substatus (such as 5 for 502.5) for the log.
func (w *respWriter) SetSubstatus(n int) { w.substatus = n }

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

// countingBody counts request body bytes and renews the read deadline
// before every read (the body timeout).
type countingBody struct {
	rc      io.Reader
	ctl     readDeadliner
	timeout time.Duration
	n       int64
	noDL    bool // the connection has no read deadlines (HTTP/3)
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && !b.noDL {
		if err := b.ctl.SetReadDeadline(time.Now().Add(b.timeout)); errors.Is(err, http.ErrNotSupported) {
			b.noDL = true
		}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

// Close closes the body if it can be closed.
func (b *countingBody) Close() error {
	if c, ok := b.rc.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// readDeadliner sets the client connection's read deadline
// (*http.ResponseController on the net/http path, the lean writer).
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// connInfo is attached to each accepted connection's context.
type connInfo struct {
	over bool // accepted beyond Limits.MaxConnections
	// conn is the connection's pipeline state (pipeline.Request.Conn).
	conn pipeline.Conn
}

type connInfoKey struct{}

// hijackSet holds hijacked connections until they close.
type hijackSet struct {
	mu    sync.Mutex // protects conns
	conns map[*hijackedConn]struct{}
	// idle is the idle timeout of upgraded connections (Timeouts.WebSocket),
	// in nanoseconds; 0 means none. It applies to connections hijacked
	// after it is set.
	idle   atomic.Int64
	logger *slog.Logger // nil: none
}

func (h *hijackSet) log() *slog.Logger {
	if h.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.logger
}

// hijackedConn is an upgraded (WebSocket) client connection. With an idle
// timeout, it is closed once no byte has been read from or written to it
// for that long; closing it ends the relay to the app in both directions.
type hijackedConn struct {
	net.Conn
	set  *hijackSet
	once sync.Once

	idle   time.Duration
	last   atomic.Int64 // time of the last read or write, UnixNano
	timer  *time.Timer  // runs expire; nil without an idle timeout
	closed atomic.Bool
}

func (h *hijackSet) add(c net.Conn) net.Conn {
	hc := &hijackedConn{Conn: c, set: h, idle: time.Duration(h.idle.Load())}
	h.mu.Lock()
	if h.conns == nil {
		h.conns = map[*hijackedConn]struct{}{}
	}
	h.conns[hc] = struct{}{}
	h.mu.Unlock()
	if hc.idle > 0 {
		hc.last.Store(time.Now().UnixNano())
		hc.timer = time.AfterFunc(hc.idle, hc.expire)
	}
	return hc
}

// expire closes c if it has been idle for c.idle, else waits for the rest.
func (c *hijackedConn) expire() {
	if c.closed.Load() {
		return
	}
	quiet := time.Since(time.Unix(0, c.last.Load()))
	if quiet < c.idle {
		c.timer.Reset(c.idle - quiet)
		return
	}
	c.set.log().Debug("upgraded connection idle, closing", "remote", c.RemoteAddr().String(), "idle", c.idle.String())
	_ = c.Close()
}

func (c *hijackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.timer != nil {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *hijackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 && c.timer != nil {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *hijackedConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		if c.timer != nil {
			c.timer.Stop()
		}
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

// closeAll closes every hijacked connection and returns how many there were.
func (h *hijackSet) closeAll() int {
	h.mu.Lock()
	conns := make([]*hijackedConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// statusClientClosedRequest is reported for a request whose client went
// away before any answer (nginx's 499).
const statusClientClosedRequest = 499
