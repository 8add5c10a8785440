//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// h2cWSApp writes an app folder running the testapp over h2c (protocol
// h2c) with GODEBUG set to godebug: "http2xconnect=1" makes its HTTP/2
// server announce extended CONNECT (RFC 8441), anything else not.
// settings are more <handlerSetting> elements.
func h2cWSApp(t *testing.T, godebug string, settings ...string) string {
	t.Helper()
	return writeApp(t, testappAttrs("-h2c"), fmt.Sprintf(`<handlerSettings><handlerSetting name="protocol" value="h2c" />%s</handlerSettings>
<environmentVariables><environmentVariable name="GODEBUG" value=%q /></environmentVariables>`, strings.Join(settings, ""), godebug))
}

// TestWebSocketToH2CApp: WebSockets reach an h2c app, the testapp's
// RFC 8441 echo started by the real binary, as extended CONNECT streams,
// whatever the client used: an HTTP/1.1 upgrade (coder/websocket), an
// extended CONNECT over HTTP/2 or over HTTP/3. Messages echo both ways,
// the close code comes back, and no module field reaches the client. An
// h2c app that does not announce extended CONNECT answers WebSockets 501
// (the log says why) and its ordinary requests still work.
func TestWebSocketToH2CApp(t *testing.T) {
	t.Parallel()
	p := newPKI(t, t.TempDir())
	app := h2cWSApp(t, "http2xconnect=1")
	plain := h2cWSApp(t, "http2xconnect=0")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`protocols: {http3: true}
shutdownTimeout: 5s
sites:
  - name: ws
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
      - {path: /, dir: %s}
      - {path: /plain, dir: %s}
`, p.certFile, p.keyFile, app, plain))
	t.Cleanup(func() {
		waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(plain)) == 0 })
	})
	// Go's HTTP/2 server (the front door's) takes extended CONNECT only
	// with this setting; the apps' own GODEBUG overrides it.
	g := startEnv(t, app, []string{"GODEBUG=http2xconnect=1"}, "serve", "--config", cfgFile)
	httpAddr, httpsAddr := g.listenerAddr(t, "http"), g.listenerAddr(t, "https")
	ctx, cancel := context.WithTimeout(ctxT(t), 60*time.Second)
	defer cancel()

	t.Run("HTTP/1.1", func(t *testing.T) {
		c, res, err := websocket.Dial(ctx, "ws://"+httpAddr+"/ws", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		checkNoModuleFields(t, res.Header)
		for _, msg := range []string{"hello", strings.Repeat("0123456789", 20000)} {
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatalf("write: %v", err)
			}
			typ, got, err := c.Read(ctx)
			if err != nil || typ != websocket.MessageText || string(got) != msg {
				t.Fatalf("echo: %v %v %.20q, want %.20q", typ, err, got, msg)
			}
		}
		// The app echoes the close frame, which completes the handshake.
		if err := c.Close(4001, "bye"); err != nil {
			t.Errorf("close handshake: %v", err)
		}
	})

	for _, proto := range extConnectClients(t, p.roots) {
		t.Run(proto.name, func(t *testing.T) {
			res, pw := dialExtendedConnect(t, ctx, proto.rt, proto.h2, "https://"+httpsAddr+"/ws")
			checkNoModuleFields(t, res.Header)
			echoText(t, pw, res.Body, "hello", "over "+proto.name)
			// A close frame (4001 "bye") comes back as it was sent, and the
			// app then ends the stream.
			if _, err := pw.Write(clientFrame(8, "\x0f\xa1bye")); err != nil {
				t.Fatalf("send close: %v", err)
			}
			if op, got := serverFrame(t, res.Body); op != 8 || got != "\x0f\xa1bye" {
				t.Errorf("after close: opcode %d %q, want the close 4001 bye", op, got)
			}
			if b, err := io.ReadAll(res.Body); len(b) != 0 {
				t.Errorf("after the close frame: %q (%v)", b, err)
			}
		})
	}

	t.Run("not announced", func(t *testing.T) {
		_, res, err := websocket.Dial(ctx, "ws://"+httpAddr+"/plain/ws", nil)
		if err == nil || res == nil || res.StatusCode != http.StatusNotImplemented {
			t.Fatalf("dial: %v, %v; want 501", res, err)
		}
		waitFor(t, 10*time.Second, "the reason in the log", func() bool {
			rec := g.logs.find("WebSocket not relayed to the h2c app")
			return rec != nil && strings.Contains(fmt.Sprint(rec["err"]), "SETTINGS_ENABLE_CONNECT_PROTOCOL")
		})
		res, err = client.Get("http://" + httpAddr + "/plain/pid")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("GET /plain/pid: %d %q", res.StatusCode, b)
		}
	})
}

// checkNoModuleFields fails if a MS-ASPNETCORE-* field reached the client.
func checkNoModuleFields(t *testing.T, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(strings.ToUpper(k), "MS-ASPNETCORE") {
			t.Errorf("the client got %s", k)
		}
	}
}

// TestWebSocketToH2CAppRecycle: a WebSocket to an h2c app keeps its
// process through a recycle: it still echoes once the new process serves
// the other requests, and when the old one is stopped after drainTimeout
// the app's close (1001 Going Away) reaches the client.
func TestWebSocketToH2CAppRecycle(t *testing.T) {
	t.Parallel()
	dir := h2cWSApp(t, "http2xconnect=1", `<handlerSetting name="drainTimeout" value="10" />`)
	g := start(t, dir, "serve", dir)
	ctx, cancel := context.WithTimeout(ctxT(t), 60*time.Second)
	defer cancel()
	old := g.pid()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.base, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	echo := func(msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	echo("before")
	if err := g.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a new process to serve", func() bool { return g.pid() != old })
	echo("during the drain")
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("after the drain: %v, want the app's close 1001", err)
	}
}
