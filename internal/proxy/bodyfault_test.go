package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
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

// TestOverlongBodyClosesAppConnection hands Forward a body longer than
// the request's ContentLength (a way in that did not hold the body to its
// length): the app, which was told the length, sees its connection end
// instead of waiting for bytes that never come (and Forward for its answer
// until requestTimeout), and never reads a whole request.
func TestOverlongBodyClosesAppConnection(t *testing.T) {
	t.Parallel()
	appErr := make(chan error, 1)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		appErr <- err
	}, nil)
	front := httptest.NewServer(forwardHandler{h: e.h, describe: func(pr *pipeline.Request) {
		pr.ContentLength = 5 // the body has 13 bytes
	}})
	t.Cleanup(front.Close)
	done := make(chan struct{})
	go func() { // ends with the answer, or when the front closes (cleanup)
		defer close(done)
		if res, err := http.Post(front.URL+"/up", "text/plain", strings.NewReader("much too long")); err == nil {
			res.Body.Close()
		}
	}()
	t.Cleanup(func() { <-done })
	select {
	case err := <-appErr:
		if err == nil {
			t.Fatal("the app read a complete body")
		}
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		e.back.CloseClientConnections() // lets the cleanup end
		t.Fatal("the app still waits for the rest of the body")
	}
}
