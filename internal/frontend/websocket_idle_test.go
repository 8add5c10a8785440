//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package frontend_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// errStalled says that the machine stalled between two messages for half
// the idle timeout or more, so a close then proves nothing.
var errStalled = errors.New("stalled")

// keepBusy exchanges a message over ping every 50 ms for longer than idle.
// It returns errStalled when two exchanges were idle/2 or more apart (a
// loaded machine: the caller tries again on a new connection), the
// exchange's error when one failed although the connection was never
// quiet for long, and nil when it stayed open throughout.
func keepBusy(idle time.Duration, ping func() error) error {
	start := time.Now()
	last := start
	for time.Since(start) < idle+idle/2 {
		err := ping()
		if gap := time.Since(last); gap >= idle/2 {
			return errStalled
		}
		if err != nil {
			return err
		}
		last = time.Now()
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// busyThenQuiet runs the idle-timeout check over connections that open
// makes: busy for longer than idle, the connection stays open; quiet,
// waitClosed returns once Gatehouse closed it (the test's context bounds
// that wait). A busy phase the machine stalled in is tried again, on a new
// connection; if every try stalled, the test is skipped.
func busyThenQuiet(t *testing.T, ctx context.Context, idle time.Duration, open func() (ping func() error, waitClosed func() error, closeConn func())) {
	t.Helper()
	for range 3 {
		ping, waitClosed, closeConn := open()
		err := keepBusy(idle, ping)
		if errors.Is(err, errStalled) {
			closeConn()
			t.Log("the machine stalled for half the idle timeout during the busy phase; trying again")
			continue
		}
		if err != nil {
			closeConn()
			t.Fatalf("a busy connection was closed: %v", err)
		}
		quietFrom := time.Now()
		if err := waitClosed(); err == nil {
			t.Error("read a message from a quiet connection")
		}
		closeConn()
		if ctx.Err() != nil {
			t.Fatalf("connection still open after %v of quiet", time.Since(quietFrom))
		}
		if quiet := time.Since(quietFrom); quiet < idle/2 {
			t.Errorf("closed after %v of quiet, before the %v timeout", quiet, idle)
		}
		return
	}
	t.Skip("the machine stalled in every try; the busy phase proves nothing")
}

// TestWebSocketIdleTimeout: an upgraded connection that carries messages
// stays open past timeouts.webSocket; once quiet for that long, Gatehouse
// closes it.
func TestWebSocketIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	e := newEnv(t, "root")
	s := start(t, e.config(t, `
shutdownTimeout: 2s
timeouts: {webSocket: 2s}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: root}]
`), newOpener())
	addr := addrOf(t, s, "http", h1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	busyThenQuiet(t, ctx, idle, func() (func() error, func() error, func()) {
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client(t, h1, addr, e.pki, false)})
		if err != nil {
			t.Fatal(err)
		}
		ping := func() error {
			if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
				return err
			}
			if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
				return errors.Join(errors.New("no echo: "+string(msg)), err)
			}
			return nil
		}
		waitClosed := func() error { _, _, err := ws.Read(ctx); return err }
		return ping, waitClosed, func() { ws.CloseNow() }
	})
}

// TestTunnelIdleTimeout is TestWebSocketIdleTimeout for WebSockets over
// HTTP/2 and HTTP/3 (extended CONNECT, RFC 8441 and RFC 9220): the same
// timeouts.webSocket ends a tunnel stream that has been quiet that long.
// Go's HTTP/2 server only accepts extended CONNECT with
// GODEBUG=http2xconnect=1 (see TestExtendedConnect), so the test runs
// itself again in a child process with it.
func TestTunnelIdleTimeout(t *testing.T) {
	if !xconnectChild(t, 60*time.Second, "h2", "h3") {
		return
	}
	const idle = 2 * time.Second
	e := newEnv(t, "root")
	s := start(t, e.config(t, `
shutdownTimeout: 2s
timeouts: {webSocket: 2s}
protocols: {http3: true}
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: root}]
`), newOpener())
	for _, m := range []mode{h2, h3} {
		t.Run(string(m), func(t *testing.T) {
			addr := addrOf(t, s, "https", m)
			var rt http.RoundTripper
			tc := &tls.Config{RootCAs: e.pki.caPool}
			if m == h2 {
				tr := &http2.Transport{TLSClientConfig: tc, DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
					d := tls.Dialer{Config: cfg}
					return d.DialContext(ctx, network, addr)
				}}
				defer tr.CloseIdleConnections()
				rt = tr
			} else {
				tr := &http3.Transport{TLSClientConfig: tc, Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
					return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
				}}
				defer tr.Close()
				rt = tr
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			busyThenQuiet(t, ctx, idle, func() (func() error, func() error, func()) {
				pr, pw := io.Pipe()
				req, err := http.NewRequestWithContext(ctx, http.MethodConnect, "https://localhost/tunnel", pr)
				if err != nil {
					t.Fatal(err)
				}
				if m == h2 {
					req.Header.Set(":protocol", "websocket")
				} else {
					req.Proto = "websocket"
				}
				res, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("extended CONNECT: %v", err)
				}
				if res.StatusCode != http.StatusOK {
					t.Fatalf("extended CONNECT: %s", res.Status)
				}
				buf := make([]byte, 4)
				ping := func() error {
					if _, err := pw.Write([]byte("ping")); err != nil {
						return err
					}
					if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "ping" {
						return errors.Join(errors.New("no echo: "+string(buf)), err)
					}
					return nil
				}
				waitClosed := func() error {
					_, err := res.Body.Read(buf)
					if err == nil {
						return nil
					}
					return err
				}
				return ping, waitClosed, func() { pw.Close(); res.Body.Close() }
			})
		})
	}
}
