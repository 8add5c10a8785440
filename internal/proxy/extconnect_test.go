//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package proxy

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/wsframe"
)

// inChild re-runs the test named name in a child process with
// GODEBUG=http2xconnect=1 and reports true, unless this is that child:
// Go's HTTP/2 server accepts extended CONNECT (RFC 8441) only with that
// setting, read once at start.
func inChild(t *testing.T, name string) bool {
	t.Helper()
	if strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		return false
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=http2xconnect=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("child did not pass:\n%s", out)
	}
	return true
}

// readWSFrame reads one unmasked (server) frame and returns its opcode
// and payload.
func readWSFrame(t *testing.T, r io.Reader) (byte, string) {
	t.Helper()
	f, err := wsframe.ReadServer(r, 1<<20)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f.Op(), string(f.Payload)
}

// TestExtendedConnectWebSocket: a WebSocket over HTTP/2 (extended CONNECT,
// RFC 8441) reaches an HTTP/1.1 app as an RFC 6455 upgrade (GET, Upgrade,
// the proxy's own key, no ":protocol" line, the module's fields added);
// the client gets 200 with the app's subprotocol, and messages echo both
// ways over the stream. An app that refuses is answered as it answered;
// an h2c app that does not announce extended CONNECT gets no WebSocket
// (501; h2tunnel_test.go has the h2c apps that do).
func TestExtendedConnectWebSocket(t *testing.T) {
	if inChild(t, "TestExtendedConnectWebSocket") {
		return
	}
	seen := make(chan *http.Request, 4)
	appDone := make(chan error, 4)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		if r.URL.Path == "/deny" {
			http.Error(w, "no sockets here", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"chat"}})
		if err != nil {
			appDone <- err
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				appDone <- nil
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo "), msg...)); err != nil {
				appDone <- err
				return
			}
		}
	}, nil)
	e.front.Close()
	e.front = httptest.NewUnstartedServer(forwardHandler{h: e.h})
	e.front.EnableHTTP2 = true
	e.front.StartTLS()
	t.Cleanup(e.front.Close)
	tr := &http2.Transport{TLSClientConfig: e.front.Client().Transport.(*http.Transport).TLSClientConfig}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	open := func(path string) (*http.Response, *io.PipeWriter) {
		pr, pw := io.Pipe()
		req, err := http.NewRequestWithContext(ctx, http.MethodConnect, e.front.URL+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-Websocket-Version", "13")
		req.Header.Set("Sec-Websocket-Protocol", "chat")
		req.Header.Set("Ms-Aspnetcore-Token", "forged")
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("extended CONNECT %s: %v", path, err)
		}
		return res, pw
	}

	res, pw := open("/chat?room=1")
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	if got := res.Header.Get("Sec-Websocket-Protocol"); got != "chat" {
		t.Errorf("Sec-WebSocket-Protocol %q, want chat", got)
	}
	if got := res.Header.Get("Sec-Websocket-Accept"); got != "" {
		t.Errorf("Sec-WebSocket-Accept reached the HTTP/2 client: %q", got)
	}
	r := <-seen
	if r.Method != http.MethodGet || r.URL.RequestURI() != "/chat?room=1" || r.Proto != "HTTP/1.1" {
		t.Errorf("app saw %s %s %s, want GET /chat?room=1 HTTP/1.1", r.Method, r.URL.RequestURI(), r.Proto)
	}
	for k := range r.Header {
		if strings.HasPrefix(k, ":") {
			t.Errorf("app saw the field %q", k)
		}
	}
	if k, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key")); err != nil || len(k) != 16 {
		t.Errorf("Sec-WebSocket-Key %q is not 16 bytes in base64", r.Header.Get("Sec-Websocket-Key"))
	}
	for k, want := range map[string]string{
		"Upgrade": "websocket", "Connection": "Upgrade", "Sec-Websocket-Version": "13",
		"Ms-Aspnetcore-Token": testToken, "X-Forwarded-Proto": "https",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("app saw %s: %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(r.Header.Get("X-Forwarded-For"), "127.0.0.1:") {
		t.Errorf("X-Forwarded-For %q", r.Header.Get("X-Forwarded-For"))
	}
	for _, msg := range []string{"hello", "again"} {
		if _, err := pw.Write(wsframe.Client(1, []byte(msg))); err != nil {
			t.Fatalf("write %s: %v", msg, err)
		}
		if op, got := readWSFrame(t, res.Body); op != 1 || got != "echo "+msg {
			t.Errorf("got opcode %d %q, want text %q", op, got, "echo "+msg)
		}
	}
	// The client ends its side: the app sees the end and closes, and the
	// stream ends.
	_ = pw.Close()
	if err := <-appDone; err != nil {
		t.Errorf("app: %v", err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}

	// The client resets the stream: the app's connection is closed.
	sctx, reset := context.WithCancel(ctx)
	pr2, pw2 := io.Pipe()
	defer pw2.Close()
	req, err := http.NewRequestWithContext(sctx, http.MethodConnect, e.front.URL+"/chat", pr2)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-Websocket-Version", "13")
	res2, err := tr.RoundTrip(req)
	if err != nil || res2.StatusCode != http.StatusOK {
		t.Fatalf("extended CONNECT: %v, %v", res2, err)
	}
	<-seen
	reset()
	res2.Body.Close()
	if err := <-appDone; err != nil {
		t.Errorf("app after the reset: %v", err)
	}

	res, pw = open("/deny")
	defer pw.Close()
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "no sockets here") {
		t.Errorf("refused: %d %q, want the app's 403", res.StatusCode, b)
	}
	if r := <-seen; r.Method != http.MethodGet {
		t.Errorf("refused request reached the app as %s", r.Method)
	}

	// An h2c app that does not announce extended CONNECT is sent no
	// WebSocket: the client is answered 501.
	silent := oneConnApp(t, func(c *net.TCPConn) {
		fr := http2.NewFramer(c, c)
		_ = fr.WriteSettings()
		_, _ = io.Copy(io.Discard, c)
	})
	h2c := &Handler{Backend: fixed(silent), H2C: true}
	t.Cleanup(h2c.CloseIdleConnections)
	e.front.Config.Handler = forwardHandler{h: h2c}
	res, pw = open("/chat")
	defer pw.Close()
	res.Body.Close()
	if res.StatusCode != http.StatusNotImplemented {
		t.Errorf("to an h2c app: status %d, want 501", res.StatusCode)
	}
	select {
	case r := <-seen:
		t.Errorf("the request reached the app: %s %s", r.Method, r.URL)
	default:
	}
}
