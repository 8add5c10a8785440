package frontend_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The tests in this file check the order maxConnections sheds waiting
// connections in: of each kind, the one that has waited longest first
// (least recently used, as nginx), so that a client that just had an
// answer keeps its connection.

// TestShedOldestParkedFirst: idle keep-alive connections, parked, each
// having had a request in turn and the first one a second: over the limit,
// each new connection is served and the connection idle longest is the
// one closed; the others keep serving.
func TestShedOldestParkedFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	const n = 4
	s := start(t, e.config(t, "limits: {maxConnections: "+strconv.Itoa(n)+"}\n"+plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	parked := func(want int) func() bool {
		return func() bool { _, p := s.LeanConns(); return p == want }
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialGet(t, addr)
		waitFor(t, fmt.Sprintf("connection %d parked", i), parked(i+1))
	}
	// Connection 0 had a request last: 1 has waited longest, then 2, 3, 0.
	if code := getOn(t, conns[0]); code != 200 {
		t.Fatalf("connection 0, second request: %d", code)
	}
	waitFor(t, "connection 0 parked again", parked(n))
	for _, oldest := range []int{1, 2} {
		dialGet(t, addr) // over the limit, and served: a connection made room
		waitClosed(t, conns[oldest], fmt.Sprintf("connection %d, idle longest", oldest))
		waitFor(t, "the new connection parked", parked(n))
	}
	for _, i := range []int{3, 0} {
		if code := getOn(t, conns[i]); code != 200 {
			t.Errorf("connection %d, idle for less time than the shed ones: %d, want 200", i, code)
		}
	}
}

// TestShedOldestTLSIdleFirst: the same for idle keep-alive connections
// over TLS, which wait on their goroutines (not parked).
func TestShedOldestTLSIdleFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	const n = 3
	s := start(t, e.config(t, "limits: {maxConnections: "+strconv.Itoa(n)+"}\n"+tlsSite), newOpener())
	addr := s.Addrs()["https"].String()
	idle := func(want int) func() bool {
		return func() bool { i, _ := s.LeanWaiting(); return i == want }
	}
	dial := func() net.Conn {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if code := getOn(t, c); code != 200 {
			t.Fatalf("first request: %d", code)
		}
		return c
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial()
		waitFor(t, fmt.Sprintf("connection %d idle", i), idle(i+1))
	}
	if code := getOn(t, conns[0]); code != 200 {
		t.Fatalf("connection 0, second request: %d", code)
	}
	waitFor(t, "connection 0 idle again", idle(n))
	dial() // over the limit, and served: a connection made room
	waitClosed(t, conns[1], "connection 1, idle longest")
	for _, i := range []int{2, 0} {
		if code := getOn(t, conns[i]); code != 200 {
			t.Errorf("connection %d, idle for less time than the shed one: %d, want 200", i, code)
		}
	}
}

// TestShedOldestNewFirst: new connections that sent nothing yet, opened
// in turn: over the limit, the one open longest is closed; the others
// are served when their request comes.
func TestShedOldestNewFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	const n = 6
	// Silent connections reach Gatehouse at once only without
	// deferAccept (with it, the kernel holds them: TestDeferAccept).
	s := start(t, e.config(t, "limits: {maxConnections: "+strconv.Itoa(n)+"}\ntimeouts: {deferAccept: -1s}\n"+plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		waitFor(t, fmt.Sprintf("new connection %d parked", i), func() bool {
			_, fresh := s.LeanWaiting()
			_, p := s.LeanConns()
			return fresh == i+1 && p == i+1
		})
	}
	dialGet(t, addr) // over the limit, and served: a connection made room
	waitClosed(t, conns[0], "new connection 0, open longest")
	for i := 1; i < n; i++ {
		if code := getOn(t, conns[i]); code != 200 {
			t.Errorf("new connection %d, open for less time than the shed one: %d, want 200", i, code)
		}
	}
}

// TestShedOldestHTTP2First: HTTP/2 connections with no stream open, each
// having had a request in turn and the first one a second: over the
// limit, each new connection is served and the one idle longest is
// closed; the others keep serving.
func TestShedOldestHTTP2First(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	const n = 3
	s := start(t, e.config(t, "limits: {maxConnections: "+strconv.Itoa(n)+"}\n"+tlsSite), newOpener())
	addr := s.Addrs()["https"].String()
	// The client may read the answer before the stream's handler has
	// returned; the connection is idle from then on.
	idle := func(want int) func() bool {
		return func() bool { b, _ := s.WaitingBatched(); return b == want }
	}
	conns := make([]*h2Client, n)
	for i := range conns {
		conns[i] = dialH2(t, addr, e.pki)
		if code := conns[i].get(t); code != 200 {
			t.Fatalf("connection %d: %d", i, code)
		}
		waitFor(t, fmt.Sprintf("HTTP/2 connection %d idle", i), idle(i+1))
	}
	if code := conns[0].get(t); code != 200 {
		t.Fatalf("connection 0, second request: %d", code)
	}
	waitFor(t, "HTTP/2 connection 0 idle again", idle(n))
	for _, oldest := range []int{1, 2} {
		// Over the limit, and served: a connection made room. It waits
		// with no stream open after its answer, the newest idle one.
		if code := dialH2(t, addr, e.pki).get(t); code != 200 {
			t.Fatalf("a new connection over the limit: %d", code)
		}
		conns[oldest].waitClosed(t, fmt.Sprintf("HTTP/2 connection %d, idle longest", oldest))
		waitFor(t, "the new HTTP/2 connection idle", idle(n))
	}
	if code := conns[0].get(t); code != 200 {
		t.Errorf("HTTP/2 connection 0, idle for less time than the shed ones: %d, want 200", code)
	}
}

// h2Client is a bare HTTP/2 client connection, one stream at a time.
type h2Client struct {
	c    *tls.Conn
	fr   *http2.Framer
	hb   bytes.Buffer
	enc  *hpack.Encoder
	next uint32 // the next stream's ID
}

// dialH2 opens an HTTP/2 connection to addr (TLS, ALPN h2), closed at
// the test's end.
func dialH2(t *testing.T, addr string, p *pki) *h2Client {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.caPool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &h2Client{c: c, fr: http2.NewFramer(c, c), next: 1}
	h.enc = hpack.NewEncoder(&h.hb)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// get makes a GET / on a new stream and returns its status, 0 when the
// connection ended first.
func (h *h2Client) get(t *testing.T) int {
	t.Helper()
	_ = h.c.SetDeadline(time.Now().Add(10 * time.Second))
	id := h.next
	h.next += 2
	h.hb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		_ = h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return 0
	}
	status := 0
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return 0
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			return 0
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				status, _ = strconv.Atoi(f.PseudoValue("status"))
				if f.StreamEnded() {
					return status
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id && f.StreamEnded() {
				return status
			}
		}
	}
}

// waitClosed waits until the server closes the connection: its read ends
// (EOF or a reset) after whatever frames came before.
func (h *h2Client) waitClosed(t *testing.T, what string) {
	t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, err := h.fr.ReadFrame()
		if err == nil {
			continue
		}
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the connection is still open", what)
		}
		return
	}
}

// tlsSite is one site with an https binding (the test PKI's certificate)
// and the fake app at /.
const tlsSite = `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`
