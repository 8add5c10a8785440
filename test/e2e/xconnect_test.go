//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/frontend"
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

// TestWebSocketLoggedWhenClosed: a WebSocket is written to the access log
// once it ended, as IIS logs one, over every protocol: an HTTP/1.1 upgrade
// (101), an extended CONNECT over HTTP/2 and HTTP/3 (200). Its time-taken
// covers the interval the test held it open for, and its bytes each way
// after the upgrade are its cs-bytes and sc-bytes.
func TestWebSocketLoggedWhenClosed(t *testing.T) {
	t.Parallel()
	p := newPKI(t, t.TempDir())
	app := writeApp(t, testappAttrs(""), "")
	logFile := filepath.Join(t.TempDir(), "access.jsonl")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`protocols: {http3: true}
shutdownTimeout: 5s
sites:
  - name: ws
    bindings:
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
      - {path: /, dir: %s}
    accessLog: {path: %s, format: json}
`, p.certFile, p.keyFile, app, logFile))
	g := startEnv(t, app, []string{"GODEBUG=http2xconnect=1"}, "serve", "--config", cfgFile)
	addr := g.listenerAddr(t, "https")
	ext := extConnectClients(t, p.roots)
	for _, name := range []string{"HTTP/1.1", "HTTP/2", "HTTP/3"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
			defer cancel()
			query := "p=" + name[len("HTTP/"):]
			var r io.Reader
			var w io.Writer
			status := http.StatusOK
			switch name {
			case "HTTP/1.1":
				r, w = dialUpgrade(t, addr, p.roots, "/ws?"+query)
				status = http.StatusSwitchingProtocols
			default:
				c := ext[0]
				if name == "HTTP/3" {
					c = ext[1]
				}
				res, pw := dialExtendedConnect(t, ctx, c.rt, c.h2, "https://"+addr+"/ws?"+query)
				r, w = res.Body, pw
			}
			opened := time.Now()
			cr, cw := &countingReader{r: r}, &countingWriter{w: w}
			echoText(t, cw, cr, "hello", "over "+name)
			held := time.Since(opened) // the WebSocket was open at least this long
			if _, err := cw.Write(clientFrame(8, "\x03\xe8")); err != nil {
				t.Fatalf("send close: %v", err)
			}
			if op, _ := serverFrame(t, cr); op != 8 {
				t.Errorf("after close: opcode %d, want 8 (close)", op)
			}
			if b, err := io.ReadAll(cr); len(b) != 0 {
				t.Errorf("after the close frame: %q (%v)", b, err)
			}
			var e frontend.JSONEntry
			waitFor(t, 10*time.Second, "the WebSocket's access log line", func() bool {
				b, _ := os.ReadFile(logFile)
				for line := range strings.Lines(string(b)) {
					if json.Unmarshal([]byte(line), &e) == nil && e.Query == query {
						return true
					}
				}
				return false
			})
			if e.Status != status || e.BytesRecv != cw.n || e.BytesSent != cr.n {
				t.Errorf("logged status %d, cs-bytes %d, sc-bytes %d; want %d, %d, %d", e.Status, e.BytesRecv, e.BytesSent, status, cw.n, cr.n)
			}
			if e.TimeTaken < held.Milliseconds() {
				t.Errorf("time-taken %d ms does not cover the %v the WebSocket was open for", e.TimeTaken, held)
			}
		})
	}
}

// dialUpgrade opens a WebSocket at target as an HTTP/1.1 upgrade over TLS
// to addr, for Host a.example.test, and fails the test unless the answer
// is 101. It returns the connection's reader after the answer's head, and
// the connection; the test's cleanup closes it.
func dialUpgrade(t *testing.T, addr string, roots *x509.CertPool, target string) (io.Reader, io.Writer) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "a.example.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: a.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", res.Status)
	}
	return br, c
}

// countingReader and countingWriter count the bytes that pass.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
