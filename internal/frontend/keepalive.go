package frontend

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listenConfig binds Gatehouse's TCP listeners. KeepAlive -1: an accepted
// connection gets no TCP keep-alive probes. Go's default (KeepAlive 0)
// turns them on with four setsockopt calls per accept, ~4% of
// Gatehouse's CPU for a new connection per request; nginx sets none.
//
// A client that vanishes without a FIN or reset is still bounded by
// Gatehouse's own timeouts while it waits in the lean loop: the header
// timeout for a request's head (and the first request), the keep-alive
// (idle) timeout between requests, the body's inactivity timeout, and the
// app's request timeout while a response is awaited. Where those do not
// hold, the connection gets the probes (Go's defaults: after 15 s idle,
// every 15 s, 9 of them) from keepAliveOn: when it leaves the lean loop
// (HTTP/2, an upgrade such as a WebSocket), when a request
// runs long enough to be watched for the client's going away (hangup),
// and on every connection when the header or idle timeout is off.
// Cleartext connections are accepted with raw system calls (rawconn.go)
// and get no probes whatever made their listener; TLS connections on
// sockets inherited from systemd or a previous Gatehouse keep Go's
// default, as their listeners are not made by this config.
var listenConfig = net.ListenConfig{KeepAlive: -1}

// listen binds a TCP listener with listenConfig.
func listen(addr string) (net.Listener, error) {
	return listenConfig.Listen(context.Background(), "tcp", addr)
}

// tcpSocket is a client connection's TCP socket: a *net.TCPConn, or a
// *rawConn (a cleartext connection accepted raw).
type tcpSocket interface {
	syscall.Conn
	SetKeepAliveConfig(net.KeepAliveConfig) error
}

// tcpConnOf returns the TCP socket under c (through TLS, the lean loop's
// hand-off and tracking wrappers, and a hijacked connection), nil if
// there is none.
func tcpConnOf(c net.Conn) tcpSocket {
	for {
		switch x := c.(type) {
		case *net.TCPConn:
			return x
		case *rawConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		case *prefixConn:
			c = x.Conn
		case *trackedConn:
			c = x.Conn
		case *hijackedConn:
			c = x.Conn
		default:
			return nil
		}
	}
}

// keepAliveOn turns TCP keep-alive probes on for c's socket, with Go's
// default timing (see listenConfig).
func keepAliveOn(c net.Conn) {
	if tc := tcpConnOf(c); tc != nil {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// setDeferAccept sets TCP_DEFER_ACCEPT on the listening socket ln to d
// (Timeouts.DeferAccept, in whole seconds, rounded up; 0 or less turns it
// off): the kernel completes the handshake but hands a connection to
// accept only once its first bytes came, or once d passed for a silent
// one. Per connection that saves a read that finds nothing, a
// registration with the poller and a goroutine's park and wake-up (the
// request is there when the connection is), −14% CPU per connection on
// bench/run.sh's close workload. It is set on every listening socket,
// whoever made it (bound here, inherited from systemd or a previous
// Gatehouse, Prebind), at start and on every reload.
func setDeferAccept(ln net.Listener, d time.Duration) error {
	if wl, ok := ln.(*waitListener); ok {
		ln = wl.Listener
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("TCP_DEFER_ACCEPT: %T is not a socket", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("TCP_DEFER_ACCEPT: %w", err)
	}
	secs := 0
	if d > 0 {
		secs = int(min((d+time.Second-1)/time.Second, math.MaxInt32))
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
	}); err != nil {
		return fmt.Errorf("TCP_DEFER_ACCEPT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("TCP_DEFER_ACCEPT: %w", os.NewSyscallError("setsockopt", serr))
	}
	return nil
}
