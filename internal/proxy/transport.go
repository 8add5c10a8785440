package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

const (
	// defaultDialTimeout bounds connecting when RequestTimeout is 0. The app
	// listens on loopback, so a connect either succeeds or is refused at once;
	// this only guards against a wedged kernel or a full accept queue.
	defaultDialTimeout = 30 * time.Second
	// idleConnTimeout closes keep-alive connections to the app that were not
	// used for this long (a stopped process's connections go sooner: they
	// fail their next read).
	idleConnTimeout = 90 * time.Second
	// maxIdleConnsPerHost: one app process serves every request, so the
	// pool must be large enough for a busy site to keep its connections.
	maxIdleConnsPerHost = 256
	// exitGrace is how long, after a refused or reset connection, the proxy
	// waits for the supervisor to notice the process exited before it
	// decides the process is alive (502.3) instead of dead (retry).
	exitGrace = 250 * time.Millisecond
)

// newTransport returns the keep-alive pool for one Handler. With
// forUpgrades, connections carry no inactivity deadline, so a WebSocket can
// stay silent for longer than timeout once upgraded.
func newTransport(timeout time.Duration, forUpgrades bool) *http.Transport {
	dialTimeout := defaultDialTimeout
	if timeout > 0 {
		dialTimeout = timeout
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	t := &http.Transport{
		Proxy:                  nil, // never a proxy: the app is on loopback
		DialContext:            d.DialContext,
		DisableCompression:     true, // pass Accept-Encoding and bodies as they are
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10, // WinHTTP's limit in ANCM
	}
	if timeout > 0 {
		if forUpgrades {
			// The upgraded connection must not time out, so the wait for
			// the response headers is bounded here instead.
			t.ResponseHeaderTimeout = timeout
		} else {
			// idleTimeoutConn's read deadline, re-armed by each write of
			// the request, already bounds the wait for response headers;
			// ResponseHeaderTimeout would add a timer per request.
			slack := min(timeout/8, time.Second)
			t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &idleTimeoutConn{Conn: c, timeout: timeout, slack: slack}, nil
			}
		}
	}
	if forUpgrades {
		t.MaxIdleConnsPerHost = 2
	}
	return t
}

// idleTimeoutConn gives every Read and Write a fresh deadline of at least
// timeout, which makes requestTimeout an inactivity timeout as in ANCM
// (WinHTTP applies it to each operation). A Write also extends a Read
// already in progress, so the Transport's background read on a pooled
// connection does not time out a request just written to it.
//
// Setting a deadline re-arms a runtime timer under locks, so it is done
// lazily: a deadline is moved only when it is less than timeout away, and
// then to timeout+slack from now. The connection thus times out between
// timeout and timeout+slack after the last activity, and a busy connection
// re-arms its timers about once per slack instead of on every call.
type idleTimeoutConn struct {
	net.Conn
	timeout time.Duration
	slack   time.Duration

	mu sync.Mutex // protects the two fields below; Read and Write run concurrently
	// readUntil and writeUntil are the deadlines last set on Conn.
	readUntil, writeUntil time.Time
}

func (c *idleTimeoutConn) Read(p []byte) (int, error) {
	c.extend(false)
	return c.Conn.Read(p)
}

func (c *idleTimeoutConn) Write(p []byte) (int, error) {
	c.extend(true)
	return c.Conn.Write(p)
}

// extend makes sure the read deadline, and with write the write deadline,
// is at least timeout from now. Errors are ignored: a closed connection
// fails the Read or Write anyway.
func (c *idleTimeoutConn) extend(write bool) {
	need := time.Now().Add(c.timeout)
	c.mu.Lock()
	if c.readUntil.Before(need) {
		c.readUntil = need.Add(c.slack)
		c.Conn.SetReadDeadline(c.readUntil) //nolint:errcheck // see above
	}
	if write && c.writeUntil.Before(need) {
		c.writeUntil = need.Add(c.slack)
		c.Conn.SetWriteDeadline(c.writeUntil) //nolint:errcheck // see above
	}
	c.mu.Unlock()
}

// roundTripper is the ReverseProxy's Transport: it sends the request to the
// leased process, and retries once on a new lease when the rules allow.
type roundTripper struct{ h *Handler }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeOf(req)
	if ex == nil {
		return nil, errors.New("proxy: request without a lease") // only if used outside ServeHTTP
	}
	h := rt.h
	t := h.transport
	if req.Header.Get("Upgrade") != "" {
		t = h.upgrades
	}
	res, err := t.RoundTrip(req)
	if err != nil && h.RetryIdempotent && ex.retryable(req, err) {
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
		res, err = t.RoundTrip(req)
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

var connectionClose = []string{"close"}

// retryable reports whether a failed round trip may be repeated on a new
// process (see Handler.RetryIdempotent). It waits up to exitGrace for the
// process to be reported as exited after a refused or reset connection.
func (ex *exchange) retryable(req *http.Request, err error) bool {
	in := ex.in
	// ContentLength 0 means no body, whatever Body is: Go's HTTP/2 and
	// HTTP/3 servers give even a bodiless GET a non-nil Body, and
	// ReverseProxy sends no body for it. A body of unknown length is -1.
	if in.ContentLength != 0 {
		return false
	}
	if !idempotent(in) {
		return false
	}
	if ex.lease.ProcessExited() {
		return true
	}
	if !connectionFailed(err) {
		return false
	}
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-ex.lease.Exited:
		return true
	case <-t.C:
		return false
	case <-req.Context().Done():
		return false
	}
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok1 := r.Header["Idempotency-Key"]
	_, ok2 := r.Header["X-Idempotency-Key"]
	return ok1 || ok2
}

// connectionFailed reports whether err says the connection was refused,
// reset or closed by the app before it answered.
func connectionFailed(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// BackendError is a failure talking to a running app process (ANCM 502.3):
// connecting, sending the request or reading the response headers.
type BackendError struct {
	// PID is the process the request was sent to.
	PID int
	// Err is the transport's error.
	Err error
}

func (e *BackendError) Error() string { return fmt.Sprintf("forward to pid %d: %v", e.PID, e.Err) }

// Unwrap returns the transport's error.
func (e *BackendError) Unwrap() error { return e.Err }
