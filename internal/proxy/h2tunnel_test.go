//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package proxy

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/logtest"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/gatehouse/gatehouse/internal/wsframe"
)

// tunnelEnd is how an app's tunnel handler ended: the close frame's
// payload it echoed, or the read error that ended it.
type tunnelEnd struct {
	close []byte
	err   error
}

// wsH2CApp starts an h2c app serving WebSockets over extended CONNECT
// (RFC 8441; Go's server announces it with GODEBUG=http2xconnect=1):
// each request is sent on seen; /deny is answered 403; any other gets
// 200 with the subprotocol "chat" and a module field that must not reach
// the client, then every message is echoed with "echo " before it, and a
// close frame is echoed back, which ends the handler. How each tunnel
// ended goes on ended.
func wsH2CApp(t *testing.T, seen chan<- *http.Request, ended chan<- tunnelEnd) *httptest.Server {
	return newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		if r.Method != http.MethodConnect || r.Header.Get(":protocol") != "websocket" {
			http.Error(w, "want an extended CONNECT", http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/deny" {
			http.Error(w, "no sockets here", http.StatusForbidden)
			return
		}
		w.Header().Set("Sec-Websocket-Protocol", "chat")
		w.Header().Set("Ms-Aspnetcore-Token", r.Header.Get("Ms-Aspnetcore-Token"))
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for {
			f, err := wsframe.ReadClient(r.Body, 1<<20)
			if err != nil {
				ended <- tunnelEnd{err: err}
				return
			}
			op, p := f.Op(), f.Payload
			out := wsframe.Server(op, append([]byte("echo "), p...))
			if op == 8 {
				out = wsframe.Server(op, p)
			}
			if _, err := w.Write(out); err != nil {
				ended <- tunnelEnd{err: err}
				return
			}
			_ = rc.Flush()
			if op == 8 {
				ended <- tunnelEnd{close: p}
				return
			}
		}
	})
}

// checkTunnelRequest checks what the app saw of a tunnel: an extended
// CONNECT for uri over HTTP/2 with the module's fields, the client's
// WebSocket fields but no Sec-WebSocket-Key and no hop-by-hop field.
func checkTunnelRequest(t *testing.T, r *http.Request, uri, proto string) {
	t.Helper()
	if r.Method != http.MethodConnect || r.Header.Get(":protocol") != "websocket" || r.URL.RequestURI() != uri || r.ProtoMajor != 2 {
		t.Errorf("app saw %s %s %s (:protocol %q), want an extended CONNECT for %s over HTTP/2",
			r.Method, r.URL.RequestURI(), r.Proto, r.Header.Get(":protocol"), uri)
	}
	for k, want := range map[string]string{
		"Ms-Aspnetcore-Token": testToken, "X-Forwarded-Proto": proto, "Sec-Websocket-Version": "13",
		"Sec-Websocket-Protocol": "chat", "Sec-Websocket-Key": "", "Upgrade": "", "Connection": "",
		"Sec-Websocket-Extensions": "",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("app saw %s: %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(r.Header.Get("X-Forwarded-For"), "127.0.0.1:") {
		t.Errorf("X-Forwarded-For %q", r.Header.Get("X-Forwarded-For"))
	}
}

// wsFront serves h behind a test front door for the rest of the test and
// returns the door's ws:// address.
func wsFront(t *testing.T, h *Handler) string {
	t.Cleanup(h.CloseIdleConnections)
	front := httptest.NewServer(forwardHandler{h: h})
	t.Cleanup(front.Close)
	return "ws" + strings.TrimPrefix(front.URL, "http")
}

// TestH2CTunnelUpgrade: a WebSocket opened over HTTP/1.1 by a real client
// reaches an h2c app as an extended CONNECT stream; the client gets 101
// with a Sec-WebSocket-Accept for its key and the app's subprotocol but
// not the module's field, messages echo both ways, and a close code
// reaches the app and comes back. A client that goes away ends the app's
// stream. Go's HTTP/2 server announces extended CONNECT only with
// GODEBUG=http2xconnect=1, so the test runs in a child with it.
func TestH2CTunnelUpgrade(t *testing.T) {
	if inChild(t, "TestH2CTunnelUpgrade") {
		return
	}
	seen := make(chan *http.Request, 4)
	ended := make(chan tunnelEnd, 4)
	app := wsH2CApp(t, seen, ended)
	b := fixed(app.Listener.Addr().String())
	h := &Handler{Backend: b, H2C: true}
	ws := wsFront(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	c, res, err := websocket.Dial(ctx, ws+"/chat?room=1",
		&websocket.DialOptions{Subprotocols: []string{"chat"}, HTTPHeader: http.Header{"Ms-Aspnetcore-Token": {"forged"}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if c.Subprotocol() != "chat" || res.Header.Get("Ms-Aspnetcore-Token") != "" {
		t.Errorf("client got subprotocol %q, token field %q", c.Subprotocol(), res.Header.Get("Ms-Aspnetcore-Token"))
	}
	checkTunnelRequest(t, <-seen, "/chat?room=1", "http")
	for _, msg := range []string{"hello", strings.Repeat("long ", 30000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(got) != "echo "+msg {
			t.Fatalf("read: %v %v %.20q", typ, err, got)
		}
	}
	if err := c.Close(4001, "bye"); err != nil {
		t.Errorf("close handshake: %v", err)
	}
	if e := <-ended; e.err != nil || len(e.close) < 2 || binary.BigEndian.Uint16(e.close) != 4001 || string(e.close[2:]) != "bye" {
		t.Errorf("app's end: %q, %v; want the close 4001 bye", e.close, e.err)
	}

	// The client goes away without a close handshake: the app's stream ends.
	c, _, err = websocket.Dial(ctx, ws+"/chat",
		&websocket.DialOptions{Subprotocols: []string{"chat"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	<-seen
	_ = c.CloseNow()
	if e := <-ended; e.err == nil {
		t.Errorf("app's stream went on after the client left: %q", e.close)
	}
	b.waitReleased(t, 2)

	// An app's refusal reaches the client as the app gave it.
	_, res, err = websocket.Dial(ctx, ws+"/deny", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("refused: %v, %v; want the app's 403", res, err)
	}
	<-seen
}

// TestH2CTunnelExtendedConnect: a WebSocket over HTTP/2 (extended CONNECT)
// reaches an h2c app as one: the client gets 200 with the app's
// subprotocol and no Sec-WebSocket-Accept or module field, messages and a
// close frame echo both ways, and a client that resets its stream ends
// the app's.
func TestH2CTunnelExtendedConnect(t *testing.T) {
	if inChild(t, "TestH2CTunnelExtendedConnect") {
		return
	}
	seen := make(chan *http.Request, 4)
	ended := make(chan tunnelEnd, 4)
	app := wsH2CApp(t, seen, ended)
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true}
	t.Cleanup(h.CloseIdleConnections)
	front := httptest.NewUnstartedServer(forwardHandler{h: h})
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	tr := &http2.Transport{TLSClientConfig: front.Client().Transport.(*http.Transport).TLSClientConfig}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	open := func(ctx context.Context, path string) (*http.Response, *io.PipeWriter) {
		t.Helper()
		pr, pw := io.Pipe()
		req, err := http.NewRequestWithContext(ctx, http.MethodConnect, front.URL+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-Websocket-Version", "13")
		req.Header.Set("Sec-Websocket-Protocol", "chat")
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("extended CONNECT %s: %v", path, err)
		}
		return res, pw
	}
	res, pw := open(ctx, "/chat?room=2")
	defer res.Body.Close()
	defer pw.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	for k, want := range map[string]string{"Sec-Websocket-Protocol": "chat", "Sec-Websocket-Accept": "", "Ms-Aspnetcore-Token": ""} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("client got %s: %q, want %q", k, got, want)
		}
	}
	checkTunnelRequest(t, <-seen, "/chat?room=2", "https")
	for _, msg := range []string{"hello", "again"} {
		if _, err := pw.Write(wsframe.Client(1, []byte(msg))); err != nil {
			t.Fatalf("write %s: %v", msg, err)
		}
		if op, got := readWSFrame(t, res.Body); op != 1 || got != "echo "+msg {
			t.Errorf("got opcode %d %q, want text %q", op, got, "echo "+msg)
		}
	}
	if _, err := pw.Write(clientCloseFrame(1000)); err != nil {
		t.Fatalf("send close: %v", err)
	}
	if op, got := readWSFrame(t, res.Body); op != 8 || got != "\x03\xe8" {
		t.Errorf("after close: opcode %d %q, want close 1000", op, got)
	}
	if e := <-ended; e.err != nil || string(e.close) != "\x03\xe8" {
		t.Errorf("app's end: %q, %v; want the close 1000", e.close, e.err)
	}

	// The client resets its stream: the app's stream ends.
	sctx, reset := context.WithCancel(ctx)
	res2, pw2 := open(sctx, "/chat")
	defer pw2.Close()
	if res2.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res2.StatusCode)
	}
	<-seen
	reset()
	res2.Body.Close()
	if e := <-ended; e.err == nil {
		t.Errorf("app's stream went on after the client reset its own: %q", e.close)
	}
}

// clientCloseFrame is a masked close frame with code.
func clientCloseFrame(code uint16) []byte {
	return wsframe.Client(8, binary.BigEndian.AppendUint16(nil, code))
}

// TestH2CTunnelNotAnnounced: an h2c app whose SETTINGS do not announce
// extended CONNECT is sent no stream; the client's WebSocket upgrade is
// answered 501 and the reason is logged (TestExtendedConnectWebSocket
// checks the same for an extended CONNECT).
func TestH2CTunnelNotAnnounced(t *testing.T) {
	t.Parallel()
	headers := make(chan struct{}, 1)
	// The app reads the client's frames until it leaves, answering only
	// its SETTINGS, which announce nothing; a HEADERS is noted.
	app := framesApp(t, func(_ *net.TCPConn, _ *http2.Framer, f http2.Frame) bool {
		if _, ok := f.(*http2.HeadersFrame); ok {
			headers <- struct{}{}
		}
		return false
	})
	logs := logtest.New()
	h := &Handler{Backend: fixed(app), H2C: true, Log: logs.Logger()}
	ws := wsFront(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, ws+"/chat", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusNotImplemented {
		t.Fatalf("dial: %v, %v; want 501", res, err)
	}
	select {
	case <-headers:
		t.Error("the app was sent a stream")
	default:
	}
	recs := logs.Find("WebSocket not relayed")
	if len(recs) != 1 || !strings.Contains(recs[0].Attrs["err"], "SETTINGS_ENABLE_CONNECT_PROTOCOL") {
		logs.Dump(t)
		t.Error("the log does not name the reason")
	}
}

// TestH2CTunnelRequestTimeout: an h2c app that announces extended CONNECT
// but never answers the stream is given up after requestTimeout, with
// 502, and its stream is reset.
func TestH2CTunnelRequestTimeout(t *testing.T) {
	t.Parallel()
	reset := make(chan http2.ErrCode, 1)
	protocol := make(chan string, 1)
	app := fakeApp(t, []http2.Setting{{ID: http2.SettingEnableConnectProtocol, Val: 1}},
		func(_ *http2.Framer, f http2.Frame) bool {
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				protocol <- f.PseudoValue("protocol")
			case *http2.RSTStreamFrame:
				reset <- f.ErrCode
			}
			return true
		})
	h := &Handler{Backend: fixed(app), H2C: true, RequestTimeout: 100 * time.Millisecond}
	ws := wsFront(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, ws+"/chat", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusBadGateway {
		t.Fatalf("dial: %v, %v; want 502", res, err)
	}
	if p := <-protocol; p != "websocket" {
		t.Errorf("the app was sent :protocol %q, want websocket", p)
	}
	awaitCancel(t, ctx, reset)
}

// acceptingApp accepts one HTTP/2 connection that announces extended
// CONNECT and answers its first stream 200, then reads until the client
// leaves.
func acceptingApp(t *testing.T) string {
	return fakeApp(t, []http2.Setting{{ID: http2.SettingEnableConnectProtocol, Val: 1}},
		func(fr *http2.Framer, f http2.Frame) bool {
			if hf, ok := f.(*http2.MetaHeadersFrame); ok {
				writeStatus(fr, hf.StreamID, false)
			}
			return true
		})
}

// TestH2CTunnelNotProcessed: a WebSocket whose app process refused the
// connection, or closed it before sending anything, is opened on a
// process acquired again, as any request to an h2c app.
func TestH2CTunnelNotProcessed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	_ = ln.Close()
	for name, first := range map[string]string{
		"refused": refused,
		"unheard": oneConnApp(t, func(*net.TCPConn) {}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			good := acceptingApp(t)
			b := &fakeBackend{}
			b.acquire = func(n int) (*upstream.Lease, error) {
				if n == 1 {
					return b.lease(first, 1, nil), nil
				}
				return b.lease(good, 2, nil), nil
			}
			h := &Handler{Backend: b, H2C: true}
			ws := wsFront(t, h)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, ws+"/chat", nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			_ = c.CloseNow()
			if n := b.calls.Load(); n != 2 {
				t.Errorf("acquired %d times, want 2", n)
			}
			b.waitReleased(t, 2)
		})
	}
}
