package frontend_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// keepAlives waits until s has want open client connections and returns
// how many of them have TCP keep-alive probes on.
func keepAlives(t *testing.T, s *running, want int) (on int) {
	t.Helper()
	waitFor(t, "the connections to be tracked", func() bool {
		on, off := s.KeepAlives()
		return on+off == want
	})
	on, _ = s.KeepAlives()
	return on
}

// TestTCPKeepAliveOffOnAccept: a connection served by the lean loop has
// no TCP keep-alive probes (its own timeouts bound it): setting them costs
// four system calls per accepted connection.
func TestTCPKeepAliveOffOnAccept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	dialGet(t, s.Addrs()["http"].String())
	if on := keepAlives(t, s, 1); on != 0 {
		t.Errorf("%d connections with keep-alive probes, want 0", on)
	}
}

// TestTCPKeepAliveWithoutIdleTimeout: with the keep-alive (idle) timeout
// off, nothing else ends an idle connection whose client vanished, so the
// probes are on.
func TestTCPKeepAliveWithoutIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "timeouts: {idle: -1s}\n"+plainSite), newOpener())
	dialGet(t, s.Addrs()["http"].String())
	if on := keepAlives(t, s, 1); on != 1 {
		t.Errorf("%d connections with keep-alive probes, want 1", on)
	}
}

// TestTCPKeepAliveWhenTimeoutsEnd: a connection gets the probes where
// Gatehouse's own timeouts stop bounding it: upgraded (a WebSocket),
// handed to net/http (h2c), and while a request runs long enough to be
// watched for the client's going away.
func TestTCPKeepAliveWhenTimeoutsEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, "protocols: {h2c: true}\n"+plainSite), newOpener())
	addr := s.Addrs()["http"].String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("websocket", func(t *testing.T) {
		ws := openEcho(t, ctx, addr, e)
		defer ws.CloseNow()
		if on := keepAlives(t, s, 1); on != 1 {
			t.Errorf("upgraded connection: %d with keep-alive probes, want 1", on)
		}
		ws.CloseNow()
		waitFor(t, "the WebSocket to close", func() bool { on, off := s.KeepAlives(); return on+off == 0 })
	})

	t.Run("h2c", func(t *testing.T) {
		c := client(t, h2c, addr, e.pki, false)
		defer c.CloseIdleConnections()
		if res, body := get(t, c, h2c.url("127.0.0.1", "/")); res.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s)", res.StatusCode, body)
		}
		if on := keepAlives(t, s, 1); on != 1 {
			t.Errorf("h2c connection: %d with keep-alive probes, want 1", on)
		}
		c.CloseIdleConnections()
		waitFor(t, "the h2c connection to close", func() bool { on, off := s.KeepAlives(); return on+off == 0 })
	})

	t.Run("long request", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		// The hangup watch starts within 1.5 s of the request.
		waitFor(t, "the long request's connection to get keep-alive probes", func() bool {
			on, _ := s.KeepAlives()
			return on == 1
		})
	})
}
