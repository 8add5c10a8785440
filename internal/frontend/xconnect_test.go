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

// TestExtendedConnect checks RFC 8441 (WebSockets over HTTP/2). Go 1.26's
// server only advertises SETTINGS_ENABLE_CONNECT_PROTOCOL when the process
// starts with GODEBUG=http2xconnect=1 (read once at init, golang/go#71128),
// so the test re-runs itself in a child process with that setting. The app
// then gets "CONNECT" with the ":protocol" pseudo-header and a full-duplex
// body; turning that into an HTTP/1.1 Upgrade is the proxy's job.
func TestExtendedConnect(t *testing.T) {
	if !strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestExtendedConnect$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GODEBUG=http2xconnect=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "PASS") {
			t.Fatalf("child did not pass:\n%s", out)
		}
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
