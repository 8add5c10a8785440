package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocket(t *testing.T) {
	t.Parallel()
	handshake := make(chan http.Header, 2)
	serverClose := make(chan websocket.StatusCode, 2)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		handshake <- r.Header.Clone()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				serverClose <- websocket.CloseStatus(err)
				return
			}
			switch string(msg) {
			case "bye":
				c.Close(4001, "server bye")
				return
			case "slow":
				// Answer after longer than RequestTimeout: an upgraded
				// connection is not subject to it.
				select {
				case <-time.After(400 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	}, func(h *Handler) { h.RequestTimeout = 200 * time.Millisecond })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.front.URL, "http") + "/ws"
	opts := &websocket.DialOptions{
		HTTPClient: e.front.Client(),
		HTTPHeader: http.Header{
			"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"},
			"Ms-Aspnetcore-Token":      {"forged"},
		},
	}

	// Client closes: echo, a slow echo, then close code 4000 reaches the app.
	c, res, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	for k := range res.Header {
		if hasModulePrefix(k) {
			t.Errorf("101 response carries %s", k)
		}
	}
	h := <-handshake
	if h.Get("Sec-Websocket-Extensions") != "" {
		t.Errorf("Sec-WebSocket-Extensions reached the app: %q", h.Get("Sec-Websocket-Extensions"))
	}
	if h.Get("Ms-Aspnetcore-Token") != testToken {
		t.Errorf("token = %q", h.Get("Ms-Aspnetcore-Token"))
	}
	for _, msg := range []string{"hello", "slow", "again"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %s: %v", msg, err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo of %q = %q, %v", msg, got, err)
		}
	}
	if n := e.b.released.Load(); n != 0 {
		t.Errorf("lease released while the WebSocket is open (%d)", n)
	}
	if err := c.Close(4000, "client bye"); err != nil {
		t.Errorf("client close: %v", err)
	}
	if code := <-serverClose; code != 4000 {
		t.Errorf("app saw close code %d, want 4000", code)
	}
	e.b.waitReleased(t, 1)

	// The app closes: close code 4001 reaches the client.
	c, _, err = websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	<-handshake
	if err := c.Write(ctx, websocket.MessageText, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "server bye" {
		t.Errorf("client read err = %v, want close 4001 server bye", err)
	}
	e.b.waitReleased(t, 2)
}

// TestUpgradeAnswers checks the answers to a WebSocket upgrade other than
// the switch: an app that refuses it answers as to any request (its status
// and body reach the client); an app that switches to another protocol
// than the one asked for gets 502, and its connection is not relayed.
func TestUpgradeAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "no websockets here", http.StatusForbidden)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		_ = brw.Flush()
	}, nil)
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/refuse", http.StatusForbidden, "no websockets here"},
		{"/other", http.StatusBadGateway, "HTTP Error 502"},
	} {
		req, err := http.NewRequest("GET", e.front.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		res, body := get(t, e.front.Client(), req)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d with %q", tc.path, res.StatusCode, body, tc.status, tc.body)
		}
	}
	e.b.waitReleased(t, 2)
}
