package frontend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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
}

var statePool = sync.Pool{New: func() any { return new(reqState) }}

// ServeHTTP is the handler of every http.Server and HTTP/3 server of the
// listener: limits, host routing, redirect, the app, then the access log.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.srv.serveHTTP(l, w, r)
}

func (s *Server) serveHTTP(l *listener, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	tab := l.routes.Load()
	site, ok := tab.hosts.lookup(r.Host)
	if !ok {
		// Unknown host and no default binding: say nothing about other sites.
		s.log.Debug("no site for host", "listener", l.key, "host", r.Host, "remote", r.RemoteAddr)
		writeStatusPage(w, http.StatusNotFound, 0)
		return
	}
	st := statePool.Get().(*reqState)
	st.rw = respWriter{ResponseWriter: w, srv: s}
	defer func() {
		st.finish(site, r, start)
		st.rw = respWriter{}
		st.body = countingBody{}
		statePool.Put(st)
	}()
	rw := &st.rw
	if tab.altSvc != "" && r.ProtoMajor < 3 {
		w.Header().Set("Alt-Svc", tab.altSvc)
	}
	if status, sub, why := site.lim.check(r); status != 0 {
		s.log.Info("request refused", "site", site.name, "status", status, "substatus", sub, "reason", why,
			"remote", r.RemoteAddr, "method", r.Method, "host", r.Host)
		rw.SetSubstatus(sub)
		if r.ProtoMajor == 1 && (status == http.StatusServiceUnavailable || status == http.StatusRequestEntityTooLarge) {
			w.Header().Set("Connection", "close")
		}
		writeStatusPage(rw, status, sub)
		return
	}
	if site.redirect && l.scheme == "http" {
		redirectHTTPS(rw, r, site.httpsPort)
		return
	}
	app := site.match(r.URL.Path)
	if app == nil {
		writeStatusPage(rw, http.StatusNotFound, 0)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		st.body = countingBody{rc: r.Body, timeout: site.lim.bodyTimeout, ctl: http.NewResponseController(w)}
		if r.ContentLength < 0 && site.lim.maxBody > 0 {
			st.body.rc = http.MaxBytesReader(w, r.Body, site.lim.maxBody)
		}
		r.Body = &st.body
	}
	app.app.ServeHTTP(rw, r)
}

// check applies the request limits; it returns status 0 when the request may
// pass, else the IIS-like status, substatus and a reason for the log.
func (lim *limits) check(r *http.Request) (status, sub int, why string) {
	if c, _ := r.Context().Value(connInfoKey{}).(*connInfo); c != nil && c.over {
		return http.StatusServiceUnavailable, 0, "maxConnections"
	}
	path, query := r.RequestURI, ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		path, query = r.URL.EscapedPath(), r.URL.RawQuery
	}
	if lim.maxURL > 0 && len(path) > lim.maxURL {
		return http.StatusNotFound, 14, "maxUrl"
	}
	if lim.maxQuery > 0 && len(query) > lim.maxQuery {
		return http.StatusNotFound, 15, "maxQueryString"
	}
	if lim.maxRequestBytes > 0 && requestBytes(r) > lim.maxRequestBytes {
		return http.StatusRequestHeaderFieldsTooLarge, 0, "maxRequestBytes"
	}
	if lim.maxBody > 0 && r.ContentLength > lim.maxBody {
		return http.StatusRequestEntityTooLarge, 0, "maxAllowedContentLength"
	}
	return 0, 0, ""
}

// requestBytes estimates the size of the request line and headers as sent
// on HTTP/1.1 ("Name: value\r\n"); HTTP/2 and HTTP/3 are measured the same
// way so one limit means the same on every protocol.
func requestBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(" HTTP/1.1\r\n") + len("Host: \r\n") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// finish writes the access log line of the request.
func (st *reqState) finish(site *siteRoute, r *http.Request, start time.Time) {
	if site.log == nil {
		return
	}
	status := st.rw.status
	if status == 0 {
		if st.rw.hijacked {
			status = http.StatusSwitchingProtocols
		} else {
			status = http.StatusOK
		}
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	e := logEntry{
		start: start, local: local, remote: r.RemoteAddr, method: r.Method, path: r.URL.Path,
		query: r.URL.RawQuery, host: r.Host, proto: r.Proto, userAgent: r.UserAgent(), referer: r.Referer(),
		status: status, substatus: st.rw.substatus, sent: st.rw.written,
		received: st.body.n, taken: time.Since(start),
	}
	if err := site.log.write(&e); err != nil {
		st.rw.srv.log.Warn("write access log", "site", site.name, "err", err)
	}
}

func redirectHTTPS(w http.ResponseWriter, r *http.Request, port int) {
	host := hostOnly(r.Host)
	if port != 0 && port != 443 {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
	}
	code := http.StatusPermanentRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
}

// writeStatusPage writes a small HTML page for a front-door status. It names
// the status and nothing about the server's sites or apps.
func writeStatusPage(w http.ResponseWriter, status, sub int) {
	code := strconv.Itoa(status)
	if sub != 0 {
		code += "." + strconv.Itoa(sub)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>"+code+" "+http.StatusText(status)+
		"</title></head><body><h1>HTTP Error "+code+" - "+http.StatusText(status)+"</h1></body></html>\n")
}

// respWriter records status, substatus and body bytes for the access log and
// tracks hijacked connections so shutdown can close them.
type respWriter struct {
	http.ResponseWriter
	srv       *Server
	status    int
	substatus int
	written   int64
	hijacked  bool
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// SetSubstatus records the IIS substatus (such as 5 for 502.5) for the log.
func (w *respWriter) SetSubstatus(n int) { w.substatus = n }

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes buffered response data; it is a no-op if not supported.
func (w *respWriter) Flush() {
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

// countingBody counts request body bytes and renews the read deadline
// before every read (the body timeout).
type countingBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
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

func (b *countingBody) Close() error { return b.rc.Close() }

// connInfo is attached to each accepted connection's context.
type connInfo struct {
	over bool // accepted beyond Limits.MaxConnections
}

type connInfoKey struct{}

// hijackSet holds hijacked connections until they close.
type hijackSet struct {
	mu    sync.Mutex // protects conns
	conns map[*hijackedConn]struct{}
}

type hijackedConn struct {
	net.Conn
	set  *hijackSet
	once sync.Once
}

func (h *hijackSet) add(c net.Conn) net.Conn {
	hc := &hijackedConn{Conn: c, set: h}
	h.mu.Lock()
	if h.conns == nil {
		h.conns = map[*hijackedConn]struct{}{}
	}
	h.conns[hc] = struct{}{}
	h.mu.Unlock()
	return hc
}

func (c *hijackedConn) Close() error {
	c.once.Do(func() {
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
