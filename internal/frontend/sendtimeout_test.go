package frontend_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// sendApp answers every GET with body: its length declared when declared
// (the lean loop splices it), else chunked (copied). Each answer's end,
// nil or the failed write, goes to the returned channel.
func sendApp(t *testing.T, body []byte, declared bool) (string, <-chan error) {
	return sendAppRepeat(t, body, 1, declared)
}

// sendAppRepeat is sendApp with an answer of block written n times.
func sendAppRepeat(t *testing.T, block []byte, n int, declared bool) (string, <-chan error) {
	t.Helper()
	done := make(chan error, 4)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if declared {
			w.Header().Set("Content-Length", strconv.Itoa(n*len(block)))
		}
		var err error
		for range n {
			for b := block; len(b) > 0 && err == nil; b = b[min(len(b), 64<<10):] {
				_, err = w.Write(b[:min(len(b), 64<<10)])
			}
		}
		done <- err
	}))
	t.Cleanup(back.Close)
	return back.Listener.Addr().String(), done
}

// stuckAnswer returns the app for the tests whose client stops reading: a
// 1 MiB block answered as often as it takes to be larger than what the
// sockets on the way can hold (the app's send buffer, the front door's
// receive and send buffers: tcp_wmem and tcp_rmem's largest sizes, which
// the kernel's autotuning may reach), with 16 MiB to spare; so the app can
// only finish its answer if the front door read it all. It also returns
// the answer's length.
func stuckAnswer(t *testing.T, declared bool) (string, <-chan error, int64) {
	t.Helper()
	room := 2*sysctlMax(t, "tcp_wmem") + sysctlMax(t, "tcp_rmem")
	n := int(room>>20) + 16
	app, done := sendAppRepeat(t, randomBody(1<<20), n, declared)
	return app, done, int64(n) << 20
}

// sysctlMax is the largest size of the TCP buffer setting name
// (/proc/sys/net/ipv4/name: "min default max").
func sysctlMax(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("%s: %q", name, b)
	}
	v, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// sendServer runs a front door with timeouts.send = send (and h2c) in
// front of the app at addr; its log goes to logs, its request-done events
// to the returned goneLog.
func sendServer(t *testing.T, addr, send string, logs io.Writer) (string, *goneLog) {
	t.Helper()
	a, gone, _ := sendServerOn(t, "http", addr, send, logs)
	return a, gone
}

// sendServerOn is sendServer with a binding of scheme (http or https); it
// also returns the test environment (its pki for https).
func sendServerOn(t *testing.T, scheme, addr, send string, logs io.Writer) (string, *goneLog, *env) {
	t.Helper()
	return sendServerMode(t, scheme, h1, addr, send, logs)
}

// sendServerMode is sendServerOn with the address of the binding for
// mode m (h3: its UDP address, HTTP/3 on).
func sendServerMode(t *testing.T, scheme string, m mode, addr, send string, logs io.Writer) (string, *goneLog, *env) {
	t.Helper()
	e := newEnv(t, "app")
	binding := "{name: http, scheme: http, address: 127.0.0.1, port: 0}"
	if scheme == "https" {
		binding = "{name: http, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}"
	}
	cfg := e.config(t, `
timeouts: {send: `+send+`}
protocols: {h2c: true, http3: `+strconv.FormatBool(m == h3)+`}
sites:
  - name: s
    bindings: [`+binding+`]
    applications: [{path: /, dir: app}]
`)
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var done goneLog
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		h := &proxy.Handler{Backend: fixedBackend(addr), RequestTimeout: time.Minute, Log: logger}
		return chainProxyApp{proxyApp{h}, &pipeline.Chain{Observers: []pipeline.Observer{&done}}}, nil
	}
	srv, err := frontend.New(cfg, open, logger)
	if err != nil {
		t.Fatal(err)
	}
	return addrOf(t, runServer(t, srv), "http", m), &done, e
}

// wantClientFailure waits for the request-done event of the one request
// served and checks that it counts as the client's failure.
func wantClientFailure(t *testing.T, gone *goneLog) {
	t.Helper()
	waitFor(t, "the request-done event", func() bool { return len(gone.all()) == 1 })
	if d := gone.all()[0]; !d.ClientGone || d.Status != http.StatusOK {
		t.Errorf("Done: status %d, ClientGone %v; want 200 (the status sent), true", d.Status, d.ClientGone)
	}
}

// dialSmall dials addr with a small receive buffer, so that the front
// door's writes wait for the client's reads.
func dialSmall(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	return d.DialContext(ctx, "tcp", addr)
}

// waitAppEnd waits for the app's answer to end and returns how it ended.
func waitAppEnd(t *testing.T, done <-chan error, logs *syncLog) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second): // keeps a hang from hanging the test
		t.Fatalf("the app's answer never ended (log: %s)", logs.String())
		return nil
	}
}

// getBig sends GET /big on c and reads the answer's head.
func getBig(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// readPaced reads body to its end piece bytes at a time, pausing pace
// after each (the client's pace), and returns how many bytes it read; a
// failed read fails the test.
func readPaced(t *testing.T, body io.Reader, piece int64, pace time.Duration, logs *syncLog) int64 {
	t.Helper()
	var got int64
	for {
		n, err := io.CopyN(io.Discard, body, piece)
		got += n
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("after %d body bytes: %v (log: %s)", got, err, logs.String())
		}
		time.Sleep(pace)
	}
}

// pacedDownload has a client with a small receive buffer download body
// (its length declared, or chunked) through a front door whose send
// timeout is send, piece bytes at a time with pace between them; the body
// must arrive whole and the app's answer end without error. It returns
// the bytes spliced meanwhile.
func pacedDownload(t *testing.T, body []byte, declared bool, send string, piece int64, pace time.Duration) int64 {
	t.Helper()
	app, done := sendApp(t, body, declared)
	var logs syncLog
	addr, _ := sendServer(t, app, send, &logs)
	c, err := dialSmall(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second)) // keeps a hang from hanging the test
	res := getBig(t, c)
	before := frontend.SplicedBytes()
	if got := readPaced(t, res.Body, piece, pace, &logs); got != int64(len(body)) {
		t.Fatalf("body: %d bytes, want %d", got, len(body))
	}
	if err := waitAppEnd(t, done, &logs); err != nil {
		t.Fatalf("app: %v", err)
	}
	return frontend.SplicedBytes() - before
}

// TestSendTimeoutLean has an HTTP/1.1 client read the head and some of an
// answer larger than the sockets on the way can hold (stuckAnswer), then
// stop reading: the send timeout closes its connection, the app's
// connection is closed under the app's answer (not kept half-read), and
// the timeout is logged; on the copying path (chunked) and the splice
// path (declared length) of the lean loop.
func TestSendTimeoutLean(t *testing.T) {
	for _, declared := range []bool{false, true} {
		name := map[bool]string{false: "copy", true: "splice"}[declared]
		t.Run(name, func(t *testing.T) {
			app, done, size := stuckAnswer(t, declared)
			var logs syncLog
			addr, gone := sendServer(t, app, "300ms", &logs)
			c, err := dialSmall(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res := getBig(t, c)
			if _, err := io.CopyN(io.Discard, res.Body, 64<<10); err != nil {
				t.Fatal(err)
			}
			// The client stops reading here.
			if err := waitAppEnd(t, done, &logs); err == nil {
				t.Fatalf("the app wrote its whole answer to a client that stopped reading (log: %s)", logs.String())
			}
			waitFor(t, "the send timeout's log line", func() bool { return strings.Contains(logs.String(), "send timeout") })
			wantClientFailure(t, gone)
			// The client's connection was closed: reading on ends
			// before the whole body.
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, _ := io.Copy(io.Discard, res.Body)
			if n+64<<10 >= size {
				t.Errorf("the client got the whole body after the send timeout")
			}
		})
	}
}

// TestSendTimeoutSteadyClient reads a 4 MiB answer at a steady pace,
// 64 KiB every 20 ms: slower in all than the send timeout (500 ms), but
// with progress well within it. The answer arrives whole, copied and
// spliced.
func TestSendTimeoutSteadyClient(t *testing.T) {
	body := randomBody(4 << 20)
	for _, declared := range []bool{false, true} {
		name := map[bool]string{false: "copy", true: "splice"}[declared]
		t.Run(name, func(t *testing.T) {
			spliced := pacedDownload(t, body, declared, "500ms", 64<<10, 20*time.Millisecond)
			if declared != (spliced > 0) {
				t.Errorf("%d bytes spliced; declared length: %v", spliced, declared)
			}
		})
	}
}

// gatedConn stops reading (its Read waits for open) once it has read
// limit bytes: a client that stops taking a response off the socket.
type gatedConn struct {
	net.Conn
	open  chan struct{}
	mu    sync.Mutex
	limit int
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	left := c.limit
	c.mu.Unlock()
	if left <= 0 {
		<-c.open
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p[:min(len(p), left)])
	c.mu.Lock()
	c.limit -= n
	c.mu.Unlock()
	return n, err
}

// TestSendTimeoutHTTP2 has an h2c client with a flow-control window larger
// than the answer (stuckAnswer) stop reading its socket after 256 KiB: the
// server's writes block, the send timeout (WriteByteTimeout) closes the
// connection and the app's connection is closed under its answer.
func TestSendTimeoutHTTP2(t *testing.T) {
	app, done, size := stuckAnswer(t, true)
	var logs syncLog
	addr, gone := sendServer(t, app, "300ms", &logs)
	gate := make(chan struct{})
	defer close(gate)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dialSmall(ctx, addr)
			if err != nil {
				return nil, err
			}
			return &gatedConn{Conn: c, open: gate, limit: 256 << 10}, nil
		},
		Protocols: new(http.Protocols),
		// A window larger than the answer: flow control never stops the
		// server, the client's socket does.
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerConnection: int(size) + 1<<20, MaxReceiveBufferPerStream: int(size) + 1<<20},
	}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	stopReading(t, tr, "http://127.0.0.1/big", 2, done, &logs, gone)
}

// stopReading gets url through rt (over HTTP/major), reads the answer's
// head and nothing more, and expects the send timeout to end the app's
// answer (done) before the app wrote it all, as the client's failure.
func stopReading(t *testing.T, rt http.RoundTripper, url string, major int, done <-chan error, logs *syncLog, gone *goneLog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != major {
		t.Fatalf("protocol %s, want HTTP/%d", res.Proto, major)
	}
	if err := waitAppEnd(t, done, logs); err == nil {
		t.Fatalf("the app wrote its whole answer to a client that stopped reading (log: %s)", logs.String())
	}
	wantClientFailure(t, gone)
}

// TestSendTimeoutHTTP3: an HTTP/3 client that reads the head of a large
// answer and then nothing grants no more flow-control credit, so the
// answer's writes wait; the send timeout ends them (each write carries it
// as the stream's write deadline), the app's connection is closed under
// its answer, and the request counts as the client's failure.
func TestSendTimeoutHTTP3(t *testing.T) {
	app, done, _ := stuckAnswer(t, true)
	var logs syncLog
	addr, gone, e := sendServerMode(t, "https", h3, app, "300ms", &logs)
	c := client(t, h3, addr, e.pki, false)
	// The transport alone: the client's own timeout would end the stream.
	stopReading(t, c.Transport, "https://localhost/big", 3, done, &logs, gone)
}

// TestSendTimeoutSlowSplice reads a spliced 3 MiB answer 32 KiB every
// 50 ms: once the socket's send buffer is full, a splice step (256 KiB)
// takes longer than the send timeout (300 ms), but the client's progress
// is steady, so the answer arrives whole.
func TestSendTimeoutSlowSplice(t *testing.T) {
	body := randomBody(3 << 20)
	if spliced := pacedDownload(t, body, true, "300ms", 32<<10, 50*time.Millisecond); spliced < 256<<10 {
		t.Errorf("%d bytes spliced, want a step or more", spliced)
	}
}

// TestSendTimeoutLeanTLS is TestSendTimeoutLean over TLS (HTTP/1.1 on the
// lean loop, whose writes go through crypto/tls).
func TestSendTimeoutLeanTLS(t *testing.T) {
	app, done, _ := stuckAnswer(t, true)
	var logs syncLog
	addr, gone, e := sendServerOn(t, "https", app, "300ms", &logs)
	raw, err := dialSmall(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	defer c.Close()
	res := getBig(t, c)
	if _, err := io.CopyN(io.Discard, res.Body, 64<<10); err != nil {
		t.Fatal(err)
	}
	// The client stops reading here.
	if err := waitAppEnd(t, done, &logs); err == nil {
		t.Fatalf("the app wrote its whole answer to a client that stopped reading (log: %s)", logs.String())
	}
	waitFor(t, "the send timeout's log line", func() bool { return strings.Contains(logs.String(), "send timeout") })
	wantClientFailure(t, gone)
}
