package frontend_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse/gatehouse/internal/frontend"
)

// The tests in this file count conversions (frontend.RawConversions, a
// process-wide counter): they do not run in parallel.

// dialRaw opens a cleartext connection to addr, closed at the test's end.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // keeps a hang from hanging the test
	return c
}

// waitConverted waits until a raw connection has moved into Go's poller
// since the count was before: the server waits where the test means it to.
func waitConverted(t *testing.T, before int64, what string) {
	t.Helper()
	waitFor(t, what, func() bool { return frontend.RawConversions() > before })
}

// readEcho reads one response from br and decodes the fake app's echo.
func readEcho(t *testing.T, br *bufio.Reader) echo {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("response: %d %q %v", res.StatusCode, b, err)
	}
	return decode(t, string(b))
}

// TestRawSplitHead: a request head sent in two parts with a pause between
// them. The connection, accepted raw, waits for the rest of the head in
// Go's poller (it converts), and the request is answered, as is the next
// one on the same connection.
func TestRawSplitHead(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	before := frontend.RawConversions()
	c := dialRaw(t, s.Addrs()["http"].String())
	if _, err := io.WriteString(c, "GET /first HTTP/1.1\r\nHost: localhost\r\n"); err != nil {
		t.Fatal(err)
	}
	waitConverted(t, before, "the connection to wait for the rest of its head")
	if _, err := io.WriteString(c, "\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if got := readEcho(t, br); got.Path != "/first" {
		t.Fatalf("path %q, want /first", got.Path)
	}
	if _, err := io.WriteString(c, "GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readEcho(t, br); got.Path != "/second" {
		t.Fatalf("path %q, want /second", got.Path)
	}
}

// TestRawBodyLater: a request body sent after its head, once the server
// waits for it: the converted connection reads it whole.
func TestRawBodyLater(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	before := frontend.RawConversions()
	c := dialRaw(t, s.Addrs()["http"].String())
	if _, err := io.WriteString(c, "POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitConverted(t, before, "the connection to wait for the body")
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := readEcho(t, bufio.NewReader(c)); got.Body != 5 {
		t.Fatalf("the app read %d body bytes, want 5", got.Body)
	}
}

// TestRawSlowReader: a response larger than the sockets' buffers to a
// client that reads it slowly, copied (chunked) and spliced (declared
// length): the writes that wait convert the connection, and the body
// arrives whole.
func TestRawSlowReader(t *testing.T) {
	// Larger than the most a socket's send buffer grows to by default
	// (4 MiB, net.ipv4.tcp_wmem), with the client's receive buffer small.
	body := randomBody(8 << 20)
	for _, declared := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "splice"}[declared], func(t *testing.T) {
			before := frontend.RawConversions()
			pacedDownload(t, body, declared, "10s", 256<<10, 2*time.Millisecond)
			if frontend.RawConversions() == before {
				t.Fatal("the connection was not converted: it was not accepted raw, or never waited")
			}
		})
	}
}

// TestRawWebSocket: an upgraded connection leaves the lean loop in Go's
// poller (converted at the hijack) and echoes.
func TestRawWebSocket(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	before := frontend.RawConversions()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws := openEcho(t, ctx, s.Addrs()["http"].String(), e)
	defer ws.CloseNow()
	if frontend.RawConversions() == before {
		t.Fatal("the upgraded connection was not converted")
	}
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := ws.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo: %q %v, want %q", got, err, msg)
		}
	}
}

// TestRawH2c: a cleartext connection that starts with the HTTP/2 preface
// (h2c with prior knowledge) is handed to the HTTP/2 server converted,
// and serves several requests.
func TestRawH2c(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, "protocols: {h2c: true}\n"+plainSite), newOpener())
	before := frontend.RawConversions()
	c := client(t, h2c, s.Addrs()["http"].String(), e.pki, false)
	for i := range 3 {
		res, body := get(t, c, fmt.Sprintf("http://localhost/h2c-%d", i))
		if res.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", res.Proto)
		}
		if got := decode(t, body); got.Path != fmt.Sprintf("/h2c-%d", i) || got.Proto != 2 {
			t.Fatalf("echo %+v", got)
		}
	}
	if frontend.RawConversions() == before {
		t.Fatal("the h2c connection was not converted")
	}
}

// TestRawForceCloseReusedDescriptors: a drain whose deadline passes
// closes connections whose requests are in flight in the app. Their
// descriptors are free then, and new connections (of a second server in
// the same process, and their clients) get the same numbers. When the
// app answers the closed connections' requests, nothing may be written
// through a reused number: each new connection gets exactly the answers
// to its own requests.
func TestRawForceCloseReusedDescriptors(t *testing.T) {
	const n = 16
	e := newEnv(t, "app")
	oa := newOpener()
	a := start(t, e.config(t, "shutdownTimeout: 200ms\n"+plainSite), oa)
	b := start(t, newEnv(t, "app").config(t, plainSite), newOpener())
	addrA, addrB := a.Addrs()["http"].String(), b.Addrs()["http"].String()
	var held []net.Conn
	for range n {
		c := dialRaw(t, addrA)
		if _, err := io.WriteString(c, "GET /block HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "the requests in the app", func() bool { app := oa.get("s/"); return app != nil && app.hits.Load() == n })
	stopped := make(chan error, 1)
	go func() { stopped <- a.stop() }()
	for _, c := range held {
		waitClosed(t, c, "a connection with a request in flight after the drain's deadline")
		c.Close()
	}
	// New connections, client and server side in this process, take the
	// numbers the closed ones had.
	var fresh []net.Conn
	for range 2 * n {
		fresh = append(fresh, dialRaw(t, addrB))
	}
	for i, c := range fresh {
		if _, err := fmt.Fprintf(c, "GET /b-%d HTTP/1.1\r\nHost: localhost\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
	}
	close(oa.get("s/").block) // the closed connections' answers are written now, or not at all
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	for i, c := range fresh {
		br := bufio.NewReader(c)
		if got := readEcho(t, br); got.Path != fmt.Sprintf("/b-%d", i) {
			t.Fatalf("connection %d got the answer to %q", i, got.Path)
		}
		if _, err := fmt.Fprintf(c, "GET /again-%d HTTP/1.1\r\nHost: localhost\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
		if got := readEcho(t, br); got.Path != fmt.Sprintf("/again-%d", i) {
			t.Fatalf("connection %d, second request, got the answer to %q", i, got.Path)
		}
	}
}

// TestRawNewParked: a new connection whose request has not come is
// parked (no goroutine, and no move into Go's poller); it is served when
// its request comes.
func TestRawNewParked(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, silentSite), newOpener())
	before := frontend.RawConversions()
	c := dialRaw(t, s.Addrs()["http"].String())
	waitFor(t, "the new connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	if _, err := io.WriteString(c, "GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readEcho(t, bufio.NewReader(c)); got.Path != "/late" {
		t.Fatalf("path %q, want /late", got.Path)
	}
	if n := frontend.RawConversions() - before; n != 0 {
		t.Errorf("%d conversions, want none", n)
	}
}

// TestRawNewParkedExpires: a parked new connection whose request does not
// come is closed when the keep-alive timeout passes (the wait for a
// first request), and leaves the set.
func TestRawNewParkedExpires(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, "timeouts: {idle: 1s, deferAccept: -1s}\n"+plainSite), newOpener())
	c := dialRaw(t, s.Addrs()["http"].String())
	waitFor(t, "the new connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	waitClosed(t, c, "after the keep-alive timeout")
	waitFor(t, "the connection to leave the set", func() bool { o, _ := s.LeanConns(); return o == 0 })
}

// TestRawNewParkedDrain: a shutdown does not close a parked connection
// that waits for its first request (its client may be sending it): it
// waits on, within newConnGrace, is served, and then closed.
func TestRawNewParkedDrain(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, "shutdownTimeout: 30s\n"+silentSite), newOpener())
	c := dialRaw(t, s.Addrs()["http"].String())
	waitFor(t, "the new connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	waitFor(t, "the drain to wake the parked connection", func() bool { o, p := s.LeanConns(); return o == 1 && p == 0 })
	if _, err := io.WriteString(c, "GET /during-drain HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if got := readEcho(t, br); got.Path != "/during-drain" {
		t.Fatalf("path %q, want /during-drain", got.Path)
	}
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the response during the drain: read %q, %v; want EOF", b, err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// silentSite is plainSite with deferAccept off, for tests of what
// Gatehouse does with a connection that has sent nothing (with it on, the
// kernel holds such a connection for a second first: TestDeferAccept).
const silentSite = "timeouts: {deferAccept: -1s}\n" + plainSite
