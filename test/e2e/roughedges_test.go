package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebSocketDisabled: <webSocket enabled="false"/> is honoured: the
// upgrade does not happen (the app sees a plain request) and the app is
// told WebSockets are not supported.
func TestWebSocketDisabled(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	file := filepath.Join(dir, "web.config")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, strings.Replace(string(b), "<handlers>", `<webSocket enabled="false" />
      <handlers>`, 1))
	g := start(t, dir, "serve", dir)
	if got := strings.TrimSpace(g.mustGet("/env?name=ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED")); got != "false" {
		t.Errorf("ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED = %q, want false", got)
	}
	c, resp, err := websocket.Dial(ctxT(t), "ws"+strings.TrimPrefix(g.base, "http")+"/ws", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("the WebSocket upgrade succeeded with <webSocket enabled=\"false\"/>")
	}
	if resp != nil && resp.StatusCode == 101 {
		t.Errorf("status 101 with WebSockets disabled")
	}
}

// TestStartupMessages: the mistakes of a first try get messages that say
// what to do.
func TestStartupMessages(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"port only", []string{"serve", "--listen", "8080", dir}, 2, `--listen "8080" is not an address: want :8080 (every interface) or 127.0.0.1:8080`},
		{"missing folder", []string{"serve", filepath.Join(dir, "nope")}, 3, "app folder " + filepath.Join(dir, "nope") + " does not exist"},
		{"no web.config", []string{"serve", t.TempDir()}, 3, "has no web.config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := ghctl(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("gatehouse %q: exit %d\n%s\nwant exit %d with %q", tc.args, code, out, tc.code, tc.want)
			}
		})
	}
}

// TestCheckDecidesBeforePrinting: a web.config whose program is missing
// fails check without printing "OK" first; serve warns at start.
func TestCheckDecidesBeforePrinting(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, `processPath="./no-such-program" arguments=""`, "")
	code, out := ghctl(t, "check", dir)
	if code != 3 || strings.Contains(out, "OK") || !strings.Contains(out, "no-such-program") {
		t.Errorf("check of a missing program: exit %d\n%s\nwant 3 without OK", code, out)
	}
	g := start(t, dir, "serve", dir)
	if rec := g.logs.find("program cannot be found"); rec == nil {
		t.Errorf("serve did not warn about the missing program at start")
	}
}

// TestAppOnIPv6LoopbackOnly: an app that listens on [::1] only is told to
// listen on 127.0.0.1.
func TestAppOnIPv6LoopbackOnly(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	dir := t.TempDir()
	// The limit must leave python time to bind [::1] on a loaded machine:
	// until it has, the failure is "not listening", not the advice tested.
	g := start(t, dir, "run", "--dir", dir, "--startup-time-limit", "10", "--",
		python, "-m", "http.server", "%ASPNETCORE_PORT%", "--bind", "::1")
	code, _, _ := g.get("/")
	if code != 502 {
		t.Errorf("status %d, want 502.5", code)
	}
	// The failure is logged as the pool reports it, which may be just after
	// the 502.5 went out.
	var rec map[string]any
	waitFor(t, 5*time.Second, "the start failure in the log", func() bool {
		rec = g.logs.find("app failed to start")
		return rec != nil
	})
	if !strings.Contains(fmt.Sprint(rec["err"]), "must listen on 127.0.0.1") {
		t.Errorf("start failure %v does not tell the app to listen on 127.0.0.1", rec)
	}
}
