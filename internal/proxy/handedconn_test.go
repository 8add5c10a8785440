package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// TestHandedConnCarriesFirstRequest checks that a connection handed over
// with the lease (the supervisor's readiness probe's) carries the request,
// so the app sees no connection of the proxy's own, and that it is kept for
// the next request.
func TestHandedConnCarriesFirstRequest(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	back := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	back.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	back.Start()
	t.Cleanup(back.Close)
	addr := back.Listener.Addr().String()

	probe, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{}
	b.acquire = func(n int) (*upstream.Lease, error) {
		l := b.lease(addr, 100, nil)
		if n == 1 {
			l.GiveConn(probe, time.Now())
		}
		return l, nil
	}
	h := &Handler{Backend: b}
	t.Cleanup(h.CloseIdleConnections)
	front := httptest.NewServer(forwardHandler{h: h})
	t.Cleanup(front.Close)

	for i := range 2 {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		if res, body := get(t, front.Client(), req); res.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %q", i+1, res.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the app saw %d connections, want 1 (the handed-over one, kept for the second request)", n)
	}
	b.waitReleased(t, 2)
}

// TestHandedConnClosedByApp checks that a handed-over connection the app
// closed before the first request came does not fail that request: like a
// stale idle connection, it is replaced by a new one.
func TestHandedConnClosedByApp(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(back.Close)
	addr := back.Listener.Addr().String()

	// A listener that accepts the probe's connection and closes it at once,
	// standing in for an app that dropped it; the requests go to back.
	drop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer drop.Close()
	probe := droppedConn(t, drop)

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			probe := probe
			if method == http.MethodPost {
				probe = droppedConn(t, drop)
			}
			b := &fakeBackend{}
			b.acquire = func(int) (*upstream.Lease, error) {
				l := b.lease(addr, 100, nil)
				l.GiveConn(probe, time.Now())
				return l, nil
			}
			h := &Handler{Backend: b}
			t.Cleanup(h.CloseIdleConnections)
			front := httptest.NewServer(forwardHandler{h: h})
			t.Cleanup(front.Close)
			req, _ := http.NewRequest(method, front.URL+"/", nil)
			if res, body := get(t, front.Client(), req); res.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("%d %q", res.StatusCode, body)
			}
			b.waitReleased(t, 1)
		})
	}
}

// droppedConn connects to drop and has the far side close the connection
// at once, standing in for an app that dropped it. It waits for the FIN,
// so that a request sent on it meets a closed connection.
func droppedConn(t *testing.T, drop net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", drop.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := drop.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("probe connection: read %v, want EOF", err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}
