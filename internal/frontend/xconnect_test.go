//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package frontend_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// xconnectChild reports whether the running test may use extended CONNECT:
// Go's HTTP/2 server accepts it only in a process started with
// GODEBUG=http2xconnect=1 (read once at init, golang/go#71128). Outside
// such a process it runs t again in a child that has the setting, fails t
// unless the child passed it and every one of subtests, and reports false:
// the caller returns.
func xconnectChild(t *testing.T, timeout time.Duration, subtests ...string) bool {
	if strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		return true
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=http2xconnect=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := []string{"--- PASS: " + t.Name() + " "}
	for _, sub := range subtests {
		want = append(want, "--- PASS: "+t.Name()+"/"+sub+" ")
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Fatalf("child did not pass (%q missing):\n%s", strings.TrimSpace(w), out)
		}
	}
	return false
}

// TestExtendedConnect checks RFC 8441 (WebSockets over HTTP/2). Go 1.26's
// server only advertises SETTINGS_ENABLE_CONNECT_PROTOCOL when the process
// starts with GODEBUG=http2xconnect=1 (read once at init, golang/go#71128),
// so the test re-runs itself in a child process with that setting. The app
// then gets "CONNECT" with the ":protocol" pseudo-header and a full-duplex
// body; turning that into an HTTP/1.1 Upgrade is the proxy's job.
func TestExtendedConnect(t *testing.T) {
	if !xconnectChild(t, 30*time.Second) {
		return
	}
	e := newEnv(t, "app")
	o := newOpener()
	var done goneLog
	o.chains = map[string]*pipeline.Chain{"s/": {Observers: []pipeline.Observer{&done}}}
	s := start(t, e.config(t, `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), o)
	// net/http's client rejects ":protocol" (Go 1.26 checks header names
	// before HTTP/2 sees them), so this needs x/net/http2's Transport, which
	// is deprecated for everything else.
	addr := s.Addrs()["https"].String()
	tr := &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.pki.caPool},
		DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodConnect, "https://localhost/chat/ws-h2", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	go func() {
		_, _ = io.WriteString(pw, "hello")
		_ = pw.Close()
	}()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := decode(t, string(body))
	if got.Path != "/chat/ws-h2" || got.Proto != 2 || !got.TLS || got.Body != 5 || got.Method != "CONNECT" || got.Protocol != "websocket" {
		t.Errorf("app saw %+v", got)
	}
	// The tunnel is an upgraded connection for the observers (metrics), as
	// a hijacked HTTP/1.1 WebSocket is.
	waitFor(t, "the request-done event", func() bool { return len(done.all()) == 1 })
	if d := done.all()[0]; !d.Upgraded || d.Status != http.StatusOK {
		t.Errorf("Done: status %d, Upgraded %v; want 200, true", d.Status, d.Upgraded)
	}
}
