package frontend_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// plainSite is a configuration with one cleartext binding; extra goes
// before the sites.
const plainSite = `
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`

// dialGet opens a connection to addr and makes one GET on it.
func dialGet(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if code := getOn(t, c); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	return c
}

// waitClosed waits until the server closes c (EOF on a read).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection is still open", what)
	}
	if err != io.EOF && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%s: read: %v, want EOF", what, err)
	}
}

// TestIdleConnectionsParked: keep-alive connections that finished a
// request are parked (no goroutine), and each is served again when its
// next request comes, in whatever order.
func TestIdleConnectionsParked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialGet(t, addr)
	}
	waitFor(t, "every idle connection parked", func() bool { _, p := s.LeanConns(); return p == n })
	for round := range 3 {
		for i := n - 1; i >= 0; i-- {
			if code := getOn(t, conns[i]); code != 200 {
				t.Fatalf("round %d, connection %d: %d", round, i, code)
			}
		}
	}
	waitFor(t, "every idle connection parked again", func() bool { _, p := s.LeanConns(); return p == n })
}

// TestParkedPipelined: a request that arrives while the connection
// parks, and requests pipelined behind one another, are all answered.
func TestParkedPipelined(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	const k = 5
	if _, err := io.WriteString(c, strings.Repeat("GET /p HTTP/1.1\r\nHost: localhost\r\n\r\n", k)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := range k {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("response %d: %d", i, res.StatusCode)
		}
	}
}

// TestParkedKeepAliveTimeout: a parked connection is closed when the
// keep-alive timeout passes, and leaves the lean loop's set.
func TestParkedKeepAliveTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "timeouts: {idle: 1s}\n"+plainSite), newOpener())
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	waitClosed(t, c, "after the keep-alive timeout")
	waitFor(t, "the connection to leave the set", func() bool { o, _ := s.LeanConns(); return o == 0 })
}

// TestParkedClientCloses: a client that closes a parked connection has it
// cleaned up at once (no wait for the keep-alive timeout, 120 s here).
func TestParkedClientCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	c.Close()
	waitFor(t, "the connection to leave the set", func() bool { o, _ := s.LeanConns(); return o == 0 })
}

// TestParkedShed: at maxConnections a parked connection is the one
// closed to make room, and leaves the set.
func TestParkedShed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "limits: {maxConnections: 1}\n"+plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	first := dialGet(t, addr)
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	dialGet(t, addr) // served: first made room
	waitClosed(t, first, "the shed connection")
	waitFor(t, "only the new connection in the set", func() bool { o, _ := s.LeanConns(); return o == 1 })
}

// TestTLSNotParked: a TLS connection is never parked (crypto/tls may hold
// read-ahead bytes the loop cannot see) and keeps serving.
func TestTLSNotParked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), newOpener())
	c := client(t, https1, addrOf(t, s, "https", https1), e.pki, false)
	for range 3 {
		if res, _ := get(t, c, "https://localhost/"); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if o, p := s.LeanConns(); o != 1 || p != 0 {
		t.Fatalf("%d lean connections, %d parked; want 1 and 0", o, p)
	}
}

// TestShutdownUnderKeepAliveLoad: a shutdown while keep-alive clients
// keep parking and waking their connections ends (the drain and the
// poller's wake-ups take the set's lock in turn), and every client sees
// its connection end.
func TestShutdownUnderKeepAliveLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "shutdownTimeout: 30s\n"+plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	const n = 16
	served := make(chan struct{}, n)
	ended := make(chan struct{}, n)
	for range n {
		c := dialGet(t, addr)
		go func() {
			defer func() { ended <- struct{}{} }()
			first := true
			for getOn(t, c) == 200 {
				if first {
					served <- struct{}{}
					first = false
				}
			}
		}()
	}
	for range n {
		<-served
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	for range n {
		<-ended
	}
}

// TestParkedCountsPerClient: a parked connection keeps its place under
// maxConnectionsPerClient (parking gives back its goroutine, not the
// connection); the place is free again once the client closes it.
func TestParkedCountsPerClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "limits: {maxConnectionsPerClient: 2}\n"+plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	a, b := dialGet(t, addr), dialGet(t, addr)
	waitFor(t, "both connections parked", func() bool { _, p := s.LeanConns(); return p == 2 })
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if code := getOn(t, third); code != 0 {
		t.Fatalf("a third connection from the client: %d, want it closed unanswered", code)
	}
	a.Close()
	waitFor(t, "the closed connection to leave the set", func() bool { o, _ := s.LeanConns(); return o == 1 })
	dialGet(t, addr)
	if code := getOn(t, b); code != 200 {
		t.Fatalf("the other parked connection: %d", code)
	}
}

// readStatus reads one response from br within 10 s and returns its
// status (0 when none came).
func readStatus(t *testing.T, c net.Conn, br *bufio.Reader) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Logf("read response: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// sendBlockedThenNext sends on c a request that the app holds (GET /block),
// waits until the app has it as its hits-th request, then sends a second
// one behind it.
func sendBlockedThenNext(t *testing.T, c net.Conn, o *opener, hits int64) {
	t.Helper()
	if _, err := io.WriteString(c, "GET /block HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the blocked request to arrive", func() bool { return o.get("s/").hits.Load() == hits })
	if _, err := io.WriteString(c, "GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

// readBlockedThenNext reads the answers to sendBlockedThenNext's two
// requests; both must be 200.
func readBlockedThenNext(t *testing.T, c net.Conn) {
	t.Helper()
	readOKs(t, c, "blocked request", "next request")
}

// readOKs reads one answer on c for each of the requests named; each must
// be 200.
func readOKs(t *testing.T, c net.Conn, requests ...string) {
	t.Helper()
	br := bufio.NewReader(c)
	for _, what := range requests {
		if code := readStatus(t, c, br); code != 200 {
			t.Fatalf("%s: %d", what, code)
		}
	}
}

// TestParkedEventWhileServing: a request that comes while a registered
// connection is still serving the one before raises its (edge-triggered)
// event then, not when the connection parks; the park that follows reads
// it instead of sleeping, and it is answered.
func TestParkedEventWhileServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, plainSite), o)
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	sendBlockedThenNext(t, c, o, 2)
	waitFor(t, "the event for the next request", func() bool { _, w := s.LeanParking(); return w == 1 })
	close(o.get("s/").block)
	readBlockedThenNext(t, c)
	waitFor(t, "the connection parked again", func() bool { _, p := s.LeanConns(); return p == 1 })
}

// TestParkedBytesBeforeRegistration: a connection is registered in the
// idle set's epoll instance at its first park; a request that came before
// (while the first one was served) is reported at the registration and
// answered. A new connection whose first read comes before its request
// parks (and registers) before that request instead: such an attempt
// does not show the case, and the test tries again on a new connection.
func TestParkedBytesBeforeRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	for attempt := 1; ; attempt++ {
		o := newOpener()
		s := start(t, e.config(t, plainSite), o)
		c, err := net.Dial("tcp", s.Addrs()["http"].String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sendBlockedThenNext(t, c, o, 1)
		p, _ := s.LeanParking()
		close(o.get("s/").block)
		readBlockedThenNext(t, c)
		if len(p) != 0 {
			if attempt == 20 {
				t.Fatalf("%d connections registered before the first park, %d times", len(p), attempt)
			}
			t.Logf("attempt %d: the new connection parked before its request came", attempt)
			continue
		}
		waitFor(t, "the connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
		return
	}
}

// TestParkedStaleToken: an event left over from a closed connection does
// not wake the connection that reuses its descriptor: each registration
// has a token of its own. Not parallel, so that the descriptor is reused.
func TestParkedStaleToken(t *testing.T) {
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	a := dialGet(t, addr)
	waitFor(t, "the first connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	before, _ := s.LeanParking()
	a.Close()
	waitFor(t, "the first connection to leave the set", func() bool { o, _ := s.LeanConns(); return o == 0 })
	b := dialGet(t, addr)
	waitFor(t, "the second connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	for old := range before {
		if parked := s.LeanEvent(old); len(parked) != 1 || slices.Contains(slices.Collect(maps.Values(parked)), false) {
			t.Fatalf("after an event for the closed connection's token: %v (parked by token), want the new one still parked", parked)
		}
	}
	if code := getOn(t, b); code != 200 {
		t.Fatalf("the second connection: %d", code)
	}
}

// TestParkedBackToBack: clients that send each request as soon as the
// previous response is read race the connection's park (the request often
// comes between the response's write and the park); every request is
// answered.
func TestParkedBackToBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	const clients, requests = 4, 200
	errs := make(chan error, clients)
	for range clients {
		c := dialGet(t, addr)
		go func() {
			for i := range requests {
				if code := getOn(t, c); code != 200 {
					errs <- fmt.Errorf("request %d: %d", i, code)
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestParkedPartialHeadTimesOut: the header timeout holds for a parked
// connection woken by the start of a head whose rest never comes (the
// read that wakes it sets no deadline: the timeout starts with the read
// that waits).
func TestParkedPartialHeadTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "timeouts: {header: 300ms}\n"+plainSite), newOpener())
	c := dialGet(t, s.Addrs()["http"].String())
	waitFor(t, "the idle connection parked", func() bool { _, p := s.LeanConns(); return p == 1 })
	if _, err := io.WriteString(c, "GET /p HTTP/1.1\r\nHost: local"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, "after the header timeout")
}
