package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadBodyClosesAppConnection sends a chunked body that turns malformed
// after its first chunk: the client gets 400, the failure is logged at
// INFO as the client's, and the app, which already has the first chunk,
// sees its connection end instead of waiting for the rest.
func TestBadBodyClosesAppConnection(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	appErr := make(chan error, 1)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		appErr <- err
	}, func(h *Handler) {
		h.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	conn, err := net.Dial("tcp", e.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-appErr:
		if err == nil {
			t.Fatal("the app read a complete body")
		}
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		e.back.CloseClientConnections() // lets the cleanup end
		t.Fatal("the app still waits for the rest of the body")
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !res.Close {
		t.Errorf("status %d, close %v; want 400 and the connection closed", res.StatusCode, res.Close)
	}
	e.b.waitReleased(t, 1)
	if l := logs.String(); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "status=400") {
		t.Errorf("log: %s; want the 400 at INFO", l)
	}
}
