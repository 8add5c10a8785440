// Package upstream holds the few types shared by the process supervisor, which
// produces app processes, and the proxy, which forwards requests to them.
// It is a leaf: it imports nothing from Gatehouse, so neither side has to
// import the other.
package upstream

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Lease is one request's claim on a ready app process. The proxy gets a Lease
// from a Backend, forwards the request to Addr with Token, and calls Release
// exactly once when the response (or WebSocket) is finished. A Lease must not
// be copied after first use.
type Lease struct {
	// Addr is the process's listen address, "127.0.0.1:port".
	Addr string
	// Token is the pairing token to send as MS-ASPNETCORE-TOKEN.
	Token string
	// PID is the app process's id, for logs.
	PID int
	// Exited is closed once the process has exited or is being stopped. After a
	// transport error, a closed Exited tells the proxy the request hit a dying
	// process (so a safe request may be retried on a new one), and an open
	// Exited that the live process failed it (502.3).
	Exited <-chan struct{}

	release func()
	once    sync.Once
	conn    atomic.Pointer[HandedConn] // see GiveConn
}

// HandedConn is a connection to the leased process that the process's
// owner opened and hands to the proxy (see Lease.GiveConn), with the time
// it was opened.
type HandedConn struct {
	Conn   net.Conn
	Opened time.Time
}

// NewLease returns a Lease whose Release calls release once. release may be nil.
func NewLease(addr, token string, pid int, exited <-chan struct{}, release func()) *Lease {
	return &Lease{Addr: addr, Token: token, PID: pid, Exited: exited, release: release}
}

// GiveConn hands the proxy c, an open connection to the process on which
// nothing was sent yet (the readiness probe's), opened at opened: the
// first request then needs no connect of its own. The proxy takes it with
// TakeConn; Release closes it if nobody did.
func (l *Lease) GiveConn(c net.Conn, opened time.Time) {
	l.conn.Store(&HandedConn{Conn: c, Opened: opened})
}

// TakeConn returns the connection given with GiveConn, once, or nil.
func (l *Lease) TakeConn() *HandedConn {
	return l.conn.Swap(nil)
}

// Release gives the process back. It is safe to call more than once; only
// the first call has an effect. A connection given and not taken is closed.
func (l *Lease) Release() {
	l.once.Do(func() {
		if hc := l.TakeConn(); hc != nil {
			hc.Conn.Close()
		}
		if l.release != nil {
			l.release()
		}
	})
}

// ProcessExited reports whether the leased process has exited or is stopping.
func (l *Lease) ProcessExited() bool {
	select {
	case <-l.Exited:
		return true
	default:
		return false
	}
}

// Sentinel errors a Backend returns from Acquire. Callers branch on them with
// errors.Is; the proxy maps each to a status code and page in one place.
var (
	// ErrStartupFailed: the app could not be started or did not become ready
	// within startupTimeLimit (ANCM 502.5). The error is a *StartError.
	ErrStartupFailed = errors.New("app failed to start")
	// ErrRapidFails: the app crashed more than rapidFailsPerMinute times in
	// the current one-minute window; no start is tried until the window ends.
	// The error is a *RapidFailError.
	ErrRapidFails = errors.New("rapid fail limit reached")
	// ErrShuttingDown: the app is being stopped (503).
	ErrShuttingDown = errors.New("app is shutting down")
	// ErrStopped: the operator stopped the app (gatehouse stop) and it stays
	// down until started again (503). It wraps ErrShuttingDown.
	ErrStopped = fmt.Errorf("app stopped by the operator: %w", ErrShuttingDown)
	// ErrQueueFull: too many requests are already waiting for the app (503).
	ErrQueueFull = errors.New("too many requests waiting for the app")
	// ErrOffline: app_offline.htm is present (503 with the file). The error is
	// an *OfflineError.
	ErrOffline = errors.New("app is offline")
)

// StartError describes why an app process did not start. It matches
// ErrStartupFailed with errors.Is.
type StartError struct {
	// Command is the command line that was run, for the log and error page.
	Command string
	// Reason says what went wrong, e.g. "process exited during startup" or
	// "not listening on port 41234 after 2m0s".
	Reason string
	// ExitCode is the exit status if the process exited (-1 if it was killed
	// by a signal or never ran); Signal names the signal, if any.
	ExitCode int
	Signal   string
	// Output is the first part of what the process wrote to stdout/stderr
	// (at most 30,000 bytes, as ANCM keeps).
	Output string
	// Err is the underlying error, if any (spawn failure, etc.).
	Err error
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "start %s: %s", e.Command, e.Reason)
	if e.Signal != "" {
		fmt.Fprintf(&b, " (signal %s)", e.Signal)
	} else if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit code %d)", e.ExitCode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrStartupFailed) true.
func (e *StartError) Is(target error) bool { return target == ErrStartupFailed }

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }

// RapidFailError is returned while restarts are cut off. It matches
// ErrRapidFails with errors.Is.
type RapidFailError struct {
	// Limit is rapidFailsPerMinute.
	Limit int
	// RetryAfter is how long until the window ends and a start is tried again.
	RetryAfter time.Duration
	// LastExit describes the last crash, e.g. "pid 1234 exited with code 1 after 3.2s".
	LastExit string
}

func (e *RapidFailError) Error() string {
	return fmt.Sprintf("maximum rapid fail count per minute of %d exceeded; last exit: %s; retry in %s",
		e.Limit, e.LastExit, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrRapidFails) true.
func (e *RapidFailError) Is(target error) bool { return target == ErrRapidFails }

// OfflineError carries the content of app_offline.htm. It matches ErrOffline.
type OfflineError struct {
	// Body is the file's bytes, served as text/html with status 503.
	Body []byte
}

func (e *OfflineError) Error() string { return "app_offline.htm is present" }

// Is makes errors.Is(err, ErrOffline) true.
func (e *OfflineError) Is(target error) bool { return target == ErrOffline }
