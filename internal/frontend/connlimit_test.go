package frontend_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// getOn sends one HTTP/1.1 request on c and returns the status, or 0 when
// the connection was closed without an answer.
func getOn(t *testing.T, c net.Conn) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		return 0
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestMaxConnectionsPerClient: one client address gets at most
// maxConnectionsPerClient connections; the ones beyond are closed without
// an answer, and another client address is still served.
func TestMaxConnectionsPerClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
limits: {maxConnections: 1000, maxConnectionsPerClient: 5}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 0.0.0.0, port: 0}]
    applications: [{path: /, dir: app}]
`), newOpener())
	port := s.Addrs()["http"].(*net.TCPAddr).Port
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	served, refused := 0, 0
	for range 20 {
		switch code := getOn(t, dial("127.0.0.1")); code {
		case 200:
			served++
		case 0:
			refused++
		default:
			t.Fatalf("status %d", code)
		}
	}
	if served != 5 || refused != 15 {
		t.Errorf("from one address: %d served, %d refused; want 5 and 15", served, refused)
	}
	if code := getOn(t, dial("127.0.0.2")); code != 200 {
		t.Errorf("another client address: %d, want 200", code)
	}
}

// TestQUICConnectionsCounted: QUIC connections count against
// maxConnections with the TCP ones: beyond it, a QUIC connection is
// refused at the handshake, and a TCP one (with no idle connection to
// shed) gets 503; per client address too.
func TestQUICConnectionsCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	for _, tc := range []struct {
		name, limits string
	}{
		{"maxConnections", "limits: {maxConnections: 3, maxConnectionsPerClient: -1}"},
		{"maxConnectionsPerClient", "limits: {maxConnections: 1000, maxConnectionsPerClient: 3}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, e.config(t, tc.limits+`
protocols: {http3: true}
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), newOpener())
			addr := addrOf(t, s, "https", h3)
			ok, refused := 0, 0
			for range 8 {
				// One transport per connection: each request below holds
				// its own QUIC connection open until the test ends.
				tr := &http3.Transport{
					TLSClientConfig: &tls.Config{RootCAs: e.pki.caPool},
					Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
						return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
					},
				}
				t.Cleanup(func() { _ = tr.Close() })
				c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				res, err := c.Get("https://localhost/")
				if err != nil {
					refused++
					continue
				}
				res.Body.Close()
				if res.StatusCode == 200 {
					ok++
				}
			}
			if ok != 3 || refused != 5 {
				t.Errorf("QUIC connections: %d served, %d refused; want 3 and 5", ok, refused)
			}
			if tc.name != "maxConnections" {
				return
			}
			// The three QUIC connections fill maxConnections for TCP too.
			c, err := tls.Dial("tcp", s.Addrs()["https"].String(), &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if code := getOn(t, c); code != 503 {
				t.Errorf("a TCP connection beyond three QUIC ones: %d, want 503", code)
			}
		})
	}
}

// TestStreamsInFlightBounded: HTTP/2 requests in flight over all
// connections count against maxConnections: with two held, a third
// stream on the same connection gets 503.2 and the app never sees it.
func TestStreamsInFlightBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, `
limits: {maxConnections: 2}
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), o)
	c := client(t, h2, s.Addrs()["https"].String(), e.pki, false)
	c.Timeout = 30 * time.Second
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			res, err := c.Get("https://localhost/block")
			if err != nil {
				codes <- -1
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	waitFor(t, "two requests held by the app", func() bool { return o.get("s/").hits.Load() == 2 })
	res, body := get(t, c, "https://localhost/")
	if res.StatusCode != 503 || res.ProtoMajor != 2 || !strings.Contains(body, "503.2") {
		t.Errorf("a third stream: %d over HTTP/%d, want 503.2 over HTTP/2:\n%s", res.StatusCode, res.ProtoMajor, body)
	}
	if n := o.get("s/").hits.Load(); n != 2 {
		t.Errorf("the app saw %d requests, want 2", n)
	}
	close(o.get("s/").block)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Errorf("held request: %d", code)
		}
	}
	if res, _ := get(t, c, "https://localhost/"); res.StatusCode != 200 {
		t.Errorf("after the held requests ended: %d, want 200", res.StatusCode)
	}
}

// TestHTTP2SettingsBoundMemory reads the server's HTTP/2 SETTINGS: the
// streams one connection may open, the largest frame and the receive
// windows are bounded (the defaults let one connection hold 250 streams
// and 1 MiB frames).
func TestHTTP2SettingsBoundMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), newOpener())
	c, err := tls.Dial("tcp", s.Addrs()["https"].String(), &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	f, err := http2.NewFramer(c, c).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: 100,
		http2.SettingMaxFrameSize:         16 << 10,
		http2.SettingInitialWindowSize:    256 << 10,
	}
	for id, v := range want {
		if got, ok := sf.Value(id); !ok || got != v {
			t.Errorf("%v = %d (sent: %v), want %d", id, got, ok, v)
		}
	}
}

// TestIdleHTTP2ConnectionShed: at maxConnections, an HTTP/2 connection
// with no stream open is closed to make room for a new client, whose
// request is served; the HTTP/2 client reconnects for its next request.
func TestIdleHTTP2ConnectionShed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
limits: {maxConnections: 1}
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), newOpener())
	addr := s.Addrs()["https"].String()
	c2 := client(t, h2, addr, e.pki, false)
	if res, _ := get(t, c2, "https://localhost/"); res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Fatalf("HTTP/2: %d over HTTP/%d", res.StatusCode, res.ProtoMajor)
	}
	// The client may read the answer before the stream's handler has
	// returned; the connection is idle from then on.
	waitFor(t, "the HTTP/2 connection to be idle", func() bool {
		batched, _ := s.WaitingBatched()
		return batched == 1
	})
	if res, _ := get(t, client(t, https1, addr, e.pki, false), "https://localhost/"); res.StatusCode != 200 {
		t.Errorf("a new HTTP/1.1 client while the HTTP/2 connection is idle: %d, want 200", res.StatusCode)
	}
}
