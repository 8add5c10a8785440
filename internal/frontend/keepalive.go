package frontend

import (
	"context"
	"crypto/tls"
	"net"
	"syscall"
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
