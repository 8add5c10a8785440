package frontend_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slowSite is plainSite with a short header and body timeout and a long
// keep-alive timeout, so a connection that closes was closed by the first
// two, not by the keep-alive timeout.
const slowSite = "timeouts: {header: 300ms, body: 300ms, idle: 120s}\n" + plainSite

// dribble writes s to c one byte at a time, a byte every 50 ms (well
// inside the 300 ms header timeout), until s is written, a write fails, or
// the test ends. It is a client's pacing, not a wait for the server.
func dribble(t *testing.T, c net.Conn, s string) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		_ = c.SetWriteDeadline(time.Time{})
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := range len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
}

// slowHead is a request head long enough that, dribbled a byte per 50 ms,
// it takes far longer than the header timeout (about 10 s).
const slowHead = "GET /p HTTP/1.1\r\nHost: localhost\r\nX-Slow: " +
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" +
	"\r\n\r\n"

// TestSlowlorisHead: a request head dribbled a byte at a time, each byte
// well inside the header timeout, is cut off by the header timeout (it
// bounds the whole head, not the wait for each byte): on a new connection,
// on a parked keep-alive connection woken by the first byte, and on one
// woken by a first piece that comes whole (the read that wakes it sets no
// deadline) with the rest trickling after it.
func TestSlowlorisHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, slowSite), newOpener())
	addr := s.Addrs()["http"].String()

	t.Run("first request", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dribble(t, c, slowHead)
		waitClosed(t, c, "a head dribbled on a new connection")
	})
	t.Run("after a park", func(t *testing.T) {
		c := dialGet(t, addr)
		waitFor(t, "the idle connection parked", func() bool { p, _ := s.LeanParking(); return len(p) > 0 })
		dribble(t, c, slowHead)
		waitClosed(t, c, "a head dribbled on a parked connection")
	})
	t.Run("whole first piece after a park", func(t *testing.T) {
		c := dialGet(t, addr)
		waitFor(t, "the idle connection parked", func() bool { p, _ := s.LeanParking(); return len(p) > 0 })
		if _, err := io.WriteString(c, slowHead[:17]); err != nil { // the request line, whole
			t.Fatal(err)
		}
		dribble(t, c, slowHead[17:])
		waitClosed(t, c, "the rest of a head trickling after a whole request line")
	})
}

// TestPipelinedThenSilent: a pipelined burst whose last head is cut short,
// then silence, has its whole requests answered and is then closed by the
// header timeout (the partial head is buffered with the one before, so
// the loop never parks it); on a connection that was parked first too.
func TestPipelinedThenSilent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, slowSite), newOpener())
	addr := s.Addrs()["http"].String()
	const whole = "GET /p HTTP/1.1\r\nHost: localhost\r\n\r\n"
	burst := whole + whole + "GET /p HTTP/1.1\r\nHo"
	for _, parkFirst := range []bool{false, true} {
		var c net.Conn
		if parkFirst {
			c = dialGet(t, addr)
			waitFor(t, "the idle connection parked", func() bool { p, _ := s.LeanParking(); return len(p) > 0 })
		} else {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		if _, err := io.WriteString(c, burst); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i := range 2 {
			if code := readStatus(t, c, br); code != 200 {
				t.Fatalf("parked first %v: response %d: %d", parkFirst, i, code)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := br.ReadByte()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("parked first %v: the connection with a partial head is still open", parkFirst)
		}
	}
}

// TestBodyTimeoutLaterRequest: the body timeout holds for a request that
// is not the connection's first, read after a park and a wake-up (the
// woken read sets no deadline of its own): a body that stops coming makes
// the app's read fail with a timeout.
func TestBodyTimeoutLaterRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, slowSite), o)
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nab"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	res.Body.Close()
	var ne net.Error
	if err, _ := o.get("s/").bodyErr.Load().(error); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("app read error = %v, want a timeout", err)
	}
	waitClosed(t, c, "after the body timeout")
}

// TestClientGoneWhileServing: a client that closes its connection (a FIN,
// or a reset) while its request is served, or the moment the response is
// written, has the connection end instead of sitting parked until the
// keep-alive timeout (120 s here). On the first request the connection is
// not yet registered in the idle set (the registration reports the close
// at once); on a later one it is, and the set remembers the close's
// edge-triggered event for the park that follows.
func TestClientGoneWhileServing(t *testing.T) {
	t.Parallel()
	for _, later := range []bool{false, true} {
		for _, reset := range []bool{false, true} {
			e := newEnv(t, "app")
			o := newOpener()
			s := start(t, e.config(t, slowSite), o)
			c, err := net.Dial("tcp", s.Addrs()["http"].String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			hits := int64(1)
			if later {
				if code := getOn(t, c); code != 200 {
					t.Fatalf("first request: %d", code)
				}
				hits++
				waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
			}
			if _, err := io.WriteString(c, "GET /block HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the blocked request to arrive", func() bool { a := o.get("s/"); return a != nil && a.hits.Load() == hits })
			if reset {
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
			} else {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			if later {
				waitFor(t, "the close's event while serving", func() bool { _, w := s.LeanParking(); return w == 1 })
			}
			close(o.get("s/").block)
			waitFor(t, "the connection to leave the set", func() bool { open, _ := s.LeanConns(); return open == 0 })
			waitFor(t, "its socket to leave the epoll instance", func() bool { return s.LeanPolled() == 0 })
		}
	}
}

// TestClientHangupLaterRequest: a client that goes away during a long
// request that is not its connection's first, and comes after a park and
// a wake-up, still ends the app's request: the function the app registered
// with the connection's context (its AfterFuncSlot, as the proxy uses to
// close its app connection) runs. The requests before registered one and
// stopped it; the connection's context holds one at a time.
func TestClientHangupLaterRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, plainSite), o)
	c, err := net.Dial("tcp", s.Addrs()["http"].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		if _, err := io.WriteString(c, "GET /cb HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if code := readStatus(t, c, br); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
		waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	}
	if _, err := io.WriteString(c, "GET /hangcb HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request at the app", func() bool { return o.get("s/").hits.Load() == 4 })
	c.Close()
	waitFor(t, "the app's function run for the client gone", func() bool { return o.get("s/").hungUp.Load() == 1 })
	if n := o.get("s/").afterFuncs.Load(); n != 4 {
		t.Fatalf("%d requests used the lean context's AfterFuncSlot, want 4", n)
	}
	waitFor(t, "the connection to leave the set", func() bool { open, _ := s.LeanConns(); return open == 0 })
}

// TestShutdownWokenConnection: a shutdown while connections are in every
// park state (parked; serving with an event remembered for its next
// request; serving with none) closes the parked one at once, waits for
// both busy ones to finish their responses and then closes them (the
// remembered request is not served: the drain closes an idle connection),
// and ends.
func TestShutdownWokenConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, "shutdownTimeout: 30s\n"+plainSite), o)
	addr := s.Addrs()["http"].String()
	idle := dialGet(t, addr)
	woken := dialGet(t, addr)
	busy := dialGet(t, addr)
	waitFor(t, "the connections parked", func() bool { _, p := s.LeanConns(); return p == 3 })
	sendBlockedThenNext(t, woken, o, 4)
	waitFor(t, "the event for the next request", func() bool { _, w := s.LeanParking(); return w == 1 })
	if _, err := io.WriteString(busy, "GET /block HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second blocked request to arrive", func() bool { return o.get("s/").hits.Load() == 5 })
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	waitClosed(t, idle, "the parked connection during the shutdown")
	select {
	case err := <-stopped:
		t.Fatalf("the shutdown ended before the busy requests did: %v", err)
	default:
	}
	close(o.get("s/").block)
	for name, c := range map[string]net.Conn{"woken": woken, "busy": busy} {
		br := bufio.NewReader(c)
		if code := readStatus(t, c, br); code != 200 {
			t.Fatalf("%s connection's blocked request: %d", name, code)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := br.ReadByte(); err != io.EOF && (err == nil || !strings.Contains(err.Error(), "reset")) {
			t.Fatalf("%s connection after its response during the shutdown: read %q, %v; want EOF", name, b, err)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketAfterPark: a connection upgraded (hijacked) after it was
// registered in the idle set leaves the set, the registration and the
// epoll instance (still open, its socket stays there unless taken out),
// so its WebSocket bytes raise no events there; an event for its old token (as
// one already collected would be) wakes nothing, and the WebSocket keeps
// echoing.
func TestWebSocketAfterPark(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	if n := s.LeanPolled(); n != 1 {
		t.Fatalf("%d sockets in the epoll instance with one parked connection", n)
	}
	tokens, _ := s.LeanParking()
	const upgrade = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, upgrade); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	// The set forgets it under its lock, then takes its socket out of
	// the epoll instance (leanSet.remove): wait for both.
	waitFor(t, "the upgraded connection to leave the idle set and the epoll instance", func() bool {
		open, _ := s.LeanConns()
		p, _ := s.LeanParking()
		return open == 0 && len(p) == 0 && s.LeanPolled() == 0
	})
	for old := range tokens {
		if p := s.LeanEvent(old); len(p) != 0 {
			t.Fatalf("registrations after an event for the upgraded connection's token: %v", p)
		}
	}
	for i := range 3 {
		// A masked text frame "hi" (mask 1 2 3 4).
		if _, err := c.Write([]byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}); err != nil {
			t.Fatal(err)
		}
		echo := make([]byte, 4)
		if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "\x81\x02hi" {
			t.Fatalf("message %d: echo %q, %v", i, echo, err)
		}
	}
}

// TestParkedBurstFillsBuffer: a pipelined burst larger than the read
// buffer, sent at once to a registered (parked before) connection, is
// answered whole. The read that the wake-up does takes a buffer's worth;
// when the buffer ends on a request boundary, the loop would park with
// the rest unread in the socket, and an edge-triggered registration
// reports no event for bytes that were there already. Over TLS (never
// parked; its reads fill the buffer from a larger record) the burst is
// answered whole too.
func TestParkedBurstFillsBuffer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	ts := start(t, e.config(t, leanTLSConfig), newOpener())
	dials := map[string]func() (net.Conn, error){
		"cleartext": func() (net.Conn, error) { return net.Dial("tcp", s.Addrs()["http"].String()) },
		"tls": func() (net.Conn, error) {
			// The burst in one record, larger than the read buffer.
			return tls.Dial("tcp", ts.Addrs()["https"].String(), &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost",
				NextProtos: []string{"http/1.1"}, DynamicRecordSizingDisabled: true})
		},
	}
	const size = 64 // divides the read buffer's size (h1.BufSize, 4 KiB)
	head := "GET /p HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
	req := head + strings.Repeat("p", size-len(head)-4) + "\r\n\r\n"
	const n = 2 * 4096 / size
	for name, dial := range dials {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code := getOn(t, c); code != 200 {
			t.Fatalf("%s: first request: %d", name, code)
		}
		if name == "cleartext" {
			waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
		}
		if _, err := io.WriteString(c, strings.Repeat(req, n)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i := range n {
			if code := readStatus(t, c, br); code != 200 {
				t.Fatalf("%s: response %d of %d: %d", name, i, n, code)
			}
		}
	}
}

// TestParkedBodyThenPipelined: a request whose body the app reads past
// the read buffer, straight from the socket, with a request pipelined
// behind it, sent at once to a registered connection: both are answered
// (the body's last read takes exactly the body, leaving the next request
// in the socket with no event to come for it).
func TestParkedBodyThenPipelined(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	const size = 10000
	burst := "POST /p HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n" +
		strings.Repeat("b", size) + "GET /p HTTP/1.1\r\nHost: localhost\r\n\r\n"
	if _, err := io.WriteString(c, burst); err != nil {
		t.Fatal(err)
	}
	readOKs(t, c, "the POST", "the GET behind it")
}

// TestShedSparesWoken: at maxConnections the connection shed to make room
// is a parked one, never one that is serving with an event remembered
// for its next request (it is busy, not idle): that one answers both.
func TestShedSparesWoken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, "limits: {maxConnections: 2}\n"+plainSite), o)
	addr := s.Addrs()["http"].String()
	woken := dialGet(t, addr)
	parked := dialGet(t, addr)
	waitFor(t, "both connections parked", func() bool { _, p := s.LeanConns(); return p == 2 })
	sendBlockedThenNext(t, woken, o, 3)
	waitFor(t, "the event for the next request", func() bool { _, w := s.LeanParking(); return w == 1 })
	dialGet(t, addr) // served: a connection made room
	waitClosed(t, parked, "the parked connection, shed")
	close(o.get("s/").block)
	readBlockedThenNext(t, woken)
	waitFor(t, "the woken connection parked again", func() bool { _, p := s.LeanConns(); return p == 2 })
}

// TestCloseRightAfterResponse: clients that close (a FIN, or a reset) as
// soon as they have read a response race the connection's park (the close
// often comes between the response's write and the park, or just before
// the first registration); every connection leaves the set and the epoll
// instance without waiting for the keep-alive timeout (120 s here).
func TestCloseRightAfterResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	for i := range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if i%4 >= 2 { // a request served after a park first
			if code := getOn(t, c); code != 200 {
				t.Fatalf("connection %d, first request: %d", i, code)
			}
		}
		if code := getOn(t, c); code != 200 {
			t.Fatalf("connection %d: %d", i, code)
		}
		if i%2 == 1 {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	waitFor(t, "every connection to leave the set", func() bool { open, _ := s.LeanConns(); return open == 0 })
	waitFor(t, "every socket to leave the epoll instance", func() bool { return s.LeanPolled() == 0 })
}
