package frontend_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebSocketIdleTimeout: an upgraded connection that carries messages
// stays open past timeouts.webSocket; once quiet for that long, Gatehouse
// closes it.
func TestWebSocketIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	e := newEnv(t, "root")
	s := start(t, e.config(t, `
shutdownTimeout: 2s
timeouts: {webSocket: 2s}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: root}]
`), newOpener())
	addr := addrOf(t, s, "http", h1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client(t, h1, addr, e.pki, false)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	// Busy for longer than the timeout: a message every 100 ms.
	for end := time.Now().Add(idle + idle/2); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatalf("write while busy: %v", err)
		}
		if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
			t.Fatalf("echo while busy: %q, %v", msg, err)
		}
	}

	// Quiet: the next read ends when Gatehouse closes the connection.
	start := time.Now()
	_, _, err = ws.Read(ctx)
	if err == nil {
		t.Fatal("read a message from a quiet connection")
	}
	if ctx.Err() != nil {
		t.Fatalf("connection still open after %v of quiet: %v", time.Since(start), err)
	}
	if quiet := time.Since(start); quiet < idle/2 {
		t.Errorf("closed after %v of quiet, before the %v timeout", quiet, idle)
	}
}
