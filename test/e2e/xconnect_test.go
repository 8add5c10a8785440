//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/wsframe"
)

// TestWebSocketOverH2H3 opens WebSockets over HTTP/2 (RFC 8441) and
// HTTP/3 (RFC 9220) through the real binary to the testapp's WebSocket
// echo, an HTTP/1.1 app: the proxy turns the extended CONNECT into an
// RFC 6455 upgrade, and messages echo both ways over the stream. Go's
// HTTP/2 server accepts extended CONNECT only with GODEBUG=http2xconnect=1,
// so gatehouse runs with it.
func TestWebSocketOverH2H3(t *testing.T) {
	t.Parallel()
	p := newPKI(t, t.TempDir())
	app := writeApp(t, testappAttrs(""), "")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`protocols: {http3: true}
shutdownTimeout: 5s
sites:
  - name: ws
    bindings:
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
      - {path: /, dir: %s}
`, p.certFile, p.keyFile, app))
	g := startEnv(t, app, []string{"GODEBUG=http2xconnect=1"}, "serve", "--config", cfgFile)
	addr := g.listenerAddr(t, "https")
	for _, proto := range extConnectClients(t, p.roots) {
		t.Run(proto.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
			defer cancel()
			res, pw := dialExtendedConnect(t, ctx, proto.rt, proto.h2, "https://"+addr+"/ws")
			echoText(t, pw, res.Body, "hello", "over "+proto.name)
			// A close frame (status 1000): the app answers with its own.
			if _, err := pw.Write(clientFrame(8, "\x03\xe8")); err != nil {
				t.Fatalf("send close: %v", err)
			}
			if op, _ := serverFrame(t, res.Body); op != 8 {
				t.Errorf("after close: opcode %d, want 8 (close)", op)
			}
			// The app then closes its connection, which ends the stream.
			if b, err := io.ReadAll(res.Body); len(b) != 0 {
				t.Errorf("after the close frame: %q (%v)", b, err)
			}
		})
	}
}

// extConnectClient is a client that speaks extended CONNECT (RFC 8441 over
// HTTP/2, RFC 9220 over HTTP/3) to the front door.
type extConnectClient struct {
	name string
	rt   http.RoundTripper
	h2   bool // rt is HTTP/2's
}

// extConnectClients returns an HTTP/2 and an HTTP/3 client that trust
// roots and expect the name a.example.test; they are closed when t ends.
func extConnectClients(t *testing.T, roots *x509.CertPool) []extConnectClient {
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "a.example.test"}
	h2 := &http2.Transport{TLSClientConfig: tlsCfg}
	h3 := &http3.Transport{TLSClientConfig: tlsCfg}
	t.Cleanup(func() { h2.CloseIdleConnections(); _ = h3.Close() })
	return []extConnectClient{{"HTTP/2", h2, true}, {"HTTP/3", h3, false}}
}

// dialExtendedConnect opens a WebSocket at url as an extended CONNECT
// (RFC 8441/9220) over rt, HTTP/2 when h2 and HTTP/3 otherwise, for Host
// a.example.test, and fails the test unless the answer is 200. It returns
// the answer, whose body is the app's side of the tunnel, and the writer
// of the client's side; the test's cleanup closes both.
func dialExtendedConnect(t *testing.T, ctx context.Context, rt http.RoundTripper, h2 bool, url string) (*http.Response, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "a.example.test"
	if h2 {
		req.Header.Set(":protocol", "websocket")
	} else {
		req.Proto = "websocket" // quic-go's client sends it as ":protocol"
	}
	req.Header.Set("Sec-Websocket-Version", "13")
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	return res, pw
}

// echoText sends each message as a text frame on w and expects it back
// from r, as the test app's echo answers.
func echoText(t *testing.T, w io.Writer, r io.Reader, msgs ...string) {
	t.Helper()
	for _, msg := range msgs {
		if _, err := w.Write(clientFrame(1, msg)); err != nil {
			t.Fatalf("send %q: %v", msg, err)
		}
		if op, got := serverFrame(t, r); op != 1 || got != msg {
			t.Errorf("echo: opcode %d %q, want text %q", op, got, msg)
		}
	}
}

// clientFrame is a masked, final WebSocket frame with opcode op (1 text,
// 8 close) and payload msg.
func clientFrame(op byte, msg string) []byte { return wsframe.Client(op, []byte(msg)) }

// serverFrame reads one unmasked WebSocket frame and returns its opcode
// and payload.
func serverFrame(t *testing.T, r io.Reader) (byte, string) {
	t.Helper()
	f, err := wsframe.ReadServer(r, 1<<20)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f.Op(), string(f.Payload)
}
