package frontend_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
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
		}
	}
}
