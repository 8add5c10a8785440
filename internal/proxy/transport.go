package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/monoclock"
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

// idleTimeoutConn gives every Read and Write a fresh deadline of at least
// timeout, which makes requestTimeout an inactivity timeout as in ANCM
// (WinHTTP applies it to each operation). A Write also extends a Read
// already in progress, so a read waiting for the response on a pooled
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
	// readUntil and writeUntil are the deadlines last set on Conn, as
	// monoclock.Now would read them.
	readUntil, writeUntil time.Duration

	// readSet is set by extendBeforeRead and taken by the next Read,
	// which then keeps the deadlines just set rather than read the clock
	// again. Only the exchange's goroutine, which calls both, uses it.
	readSet bool
}

func (c *idleTimeoutConn) Read(p []byte) (int, error) {
	if c.readSet {
		c.readSet = false
	} else {
		c.extend(false)
	}
	return c.Conn.Read(p)
}

func (c *idleTimeoutConn) Write(p []byte) (int, error) {
	c.extend(true)
	return c.Conn.Write(p)
}

// extend makes sure the read deadline, and with write the write deadline,
// is at least timeout from now. Errors are ignored: a closed connection
// fails the Read or Write anyway.
func (c *idleTimeoutConn) extend(write bool) { c.extendAt(monoclock.Now(), write) }

// extendBeforeRead extends both deadlines from now (a monoclock.Now reading
// just taken) for a request that the next Read writes before it waits
// (h1.Socket.WriteBeforeRead): that Read keeps them, so the clock is read
// once for the write and the first read of the answer.
func (c *idleTimeoutConn) extendBeforeRead(now time.Duration) {
	c.extendAt(now, true)
	c.readSet = true
}

// extendAt is extend with now, a monoclock.Now reading.
func (c *idleTimeoutConn) extendAt(now time.Duration, write bool) {
	need := now + c.timeout
	c.mu.Lock()
	if c.readUntil < need {
		c.readUntil = need + c.slack
		c.Conn.SetReadDeadline(monoclock.Time(c.readUntil)) //nolint:errcheck // see above
	}
	if write && c.writeUntil < need {
		c.writeUntil = need + c.slack
		c.Conn.SetWriteDeadline(monoclock.Time(c.writeUntil)) //nolint:errcheck // see above
	}
	c.mu.Unlock()
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
