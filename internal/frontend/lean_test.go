package frontend_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const leanConfig = `
shutdownTimeout: 2s
protocols: {h2c: true}
limits: {maxAllowedContentLength: 100}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`

// rawExchange writes raw to addr, half-closes nothing, and reads every
// response until the server closes the connection or 2 s pass without
// one. It returns the statuses and whether the server closed.
func rawExchange(t *testing.T, addr, raw string) (statuses []int, bodies []string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			ne, ok := err.(net.Error)
			return statuses, bodies, !(ok && ne.Timeout())
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return statuses, bodies, true
		}
		if res.StatusCode == http.StatusContinue {
			continue
		}
		statuses = append(statuses, res.StatusCode)
		bodies = append(bodies, string(b))
		if res.Close {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := br.ReadByte()
			return statuses, bodies, err != nil
		}
	}
}

// TestLeanFraming sends raw requests to the lean HTTP/1.1 loop: each bad
// framing is refused with 400 and the connection closed, so the request
// pipelined behind it is never served; good requests keep the connection.
func TestLeanFraming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, leanConfig), o)
	addr := s.Addrs()["http"].String()
	const next = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name     string
		raw      string
		statuses []int // the responses before the close
		open     bool  // the connection stays open afterwards
	}{
		{"keep-alive", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + next, []int{200, 200}, true},
		{"content-length body", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + next, []int{200, 200}, true},
		{"chunked body", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" + next, []int{200, 200}, true},
		{"20 KB response header", "GET /bighead HTTP/1.1\r\nHost: x\r\n\r\n" + next, []int{200, 200}, true},
		{"connection close", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + next, []int{200}, false},
		{"expect 100-continue", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi" + next, []int{200, 200}, true},
		{"CL and TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next, []int{400}, false},
		{"duplicate CL", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx" + next, []int{400}, false},
		{"signed CL", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx" + next, []int{400}, false},
		{"CL list", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nx" + next, []int{400}, false},
		{"TE gzip, chunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + next, []int{400}, false},
		{"TE identity", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + next, []int{400}, false},
		{"two TE", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next, []int{400}, false},
		{"folded TE", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + next, []int{400}, false},
		{"bare LF", "GET /a HTTP/1.1\nHost: x\n\n" + next, []int{400}, false},
		{"bare CR", "GET /a HTTP/1.1\r\nHost: x\rX: y\r\n\r\n" + next, []int{400}, false},
		{"space before colon", "GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n" + next, []int{400}, false},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n" + next, []int{400}, false},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + next, []int{400}, false},
		{"NUL in value", "GET /a HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n" + next, []int{400}, false},
		{"chunk size 0x5", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"chunk size -5", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"chunk size overflow", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"chunk longer than size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"chunk LF only", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"quoted CRLF extension", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\ny\"\r\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"long extension", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=" + strings.Repeat("x", 2000) + "\r\nhello\r\n0\r\n\r\n" + next, []int{400}, false},
		{"bad trailer", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbadtrailer\r\n\r\n" + next, []int{400}, false},
		{"over-limit chunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n" + strings.Repeat("b", 150) + "\r\n0\r\n\r\n" + next, []int{400}, false},
		{"HTTP/1.0, closed after", "GET /a HTTP/1.0\r\nHost: x\r\n\r\n", []int{200}, false},
		{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + next, []int{200, 200}, true},
		{"HTTP/1.0 with TE", "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next, []int{400}, false},
		{"HTTP/1.2 as 1.1", "GET /a HTTP/1.2\r\nHost: x\r\n\r\n" + next, []int{200, 200}, true},
		{"HTTP/2.0 in a request line", "GET /a HTTP/2.0\r\nHost: x\r\n\r\n" + next, []int{505}, false},
		{"absolute-form", "GET http://x/a HTTP/1.1\r\nHost: y\r\n\r\n" + next, []int{200, 200}, true},
		{"absolute-form with userinfo", "GET http://u@x/a HTTP/1.1\r\nHost: x\r\n\r\n" + next, []int{400}, false},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + next, []int{200, 200}, true},
		{"GET *", "GET * HTTP/1.1\r\nHost: x\r\n\r\n" + next, []int{400}, false},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n" + next, []int{400}, false},
		{"expect unknown", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 999-x\r\nContent-Length: 1\r\n\r\nx" + next, []int{417}, false},
		{"upgrade h2c ignored", "GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" + next, []int{200, 200}, true},
		{"non-ASCII target", "GET /\xc3\xa4 HTTP/1.1\r\nHost: x\r\n\r\n" + next, []int{200, 200}, true},
		{"head over the limit", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 40000) + "\r\n\r\n" + next, []int{431}, false},
		{"big head: the buffer grows", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 5000) + "\r\n\r\n" + next, []int{200, 200}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			statuses, bodies, closed := rawExchange(t, addr, tt.raw)
			if len(statuses) != len(tt.statuses) {
				t.Fatalf("statuses %v, want %v (bodies %q)", statuses, tt.statuses, bodies)
			}
			for i := range statuses {
				if statuses[i] != tt.statuses[i] {
					t.Errorf("statuses %v, want %v", statuses, tt.statuses)
				}
			}
			if closed == tt.open {
				t.Errorf("connection closed = %v, want %v", closed, !tt.open)
			}
			for _, b := range bodies {
				if strings.Contains(b, "/smuggled") && len(statuses) == 1 {
					t.Errorf("the request behind a refused one was served: %q", b)
				}
			}
		})
	}
}

const leanTLSConfig = `
shutdownTimeout: 2s
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`

// TestLeanTLS: HTTP/1.x over TLS goes through the lean loop (strict
// framing), HTTP/1.0 too, and the app sees the TLS state.
func TestLeanTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, leanTLSConfig), o)
	addr := s.Addrs()["https"].String()
	exchange := func(raw string) (*http.Response, string) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	res, _ := exchange("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if res.StatusCode != 400 || !res.Close {
		t.Errorf("CL+TE over TLS: %d close=%v, want 400 and close", res.StatusCode, res.Close)
	}
	for _, raw := range []string{
		"GET /lean HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET /handed HTTP/1.0\r\nHost: localhost\r\n\r\n",
	} {
		res, body := exchange(raw)
		if res.StatusCode != 200 || !decode(t, body).TLS {
			t.Errorf("%q: %d %s, want 200 and TLS seen by the app", raw, res.StatusCode, body)
		}
	}
}

// TestClientHangup: a client that goes away during a long request ends
// the app's request (its context), over the lean loop as over net/http.
func TestClientHangup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, leanConfig), o)
	conn, err := net.Dial("tcp", s.Addrs()["http"].String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request at the app", func() bool { a := o.get("s/"); return a != nil && a.hits.Load() == 1 })
	conn.Close()
	waitFor(t, "the app's request cancelled", func() bool { return o.get("s/").hungUp.Load() == 1 })
}

// TestShutdownSilentConnection: a connection that never sends a request
// does not hold a shutdown for its whole budget (30 s here): like
// net/http's StateNew connections it gets a few seconds, then is closed.
func TestShutdownSilentConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, `
shutdownTimeout: 30s
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`), o)
	conn, err := net.Dial("tcp", s.Addrs()["http"].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A served request first, so the listener is surely running the loop.
	res, _ := get(t, client(t, h1, s.Addrs()["http"].String(), e.pki, false), "http://localhost/")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if err := s.stop(); err != nil { // the harness allows 10 s
		t.Fatalf("stop with a silent connection open: %v", err)
	}
}

// TestLeanHTTP10Stream: a response of unknown length goes to an HTTP/1.0
// client delimited by the connection's close, never chunked (HTTP/1.0 has
// no chunks); to an HTTP/1.1 client it is chunked and the connection stays.
func TestLeanHTTP10Stream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, leanConfig), newOpener())
	addr := s.Addrs()["http"].String()
	for _, tt := range []struct {
		proto   string
		chunked bool
	}{{"HTTP/1.0", false}, {"HTTP/1.1", true}} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /stream "+tt.proto+"\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if tt.chunked {
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if len(res.TransferEncoding) != 1 || string(body) != "first,second" || res.Close {
				t.Errorf("%s: transfer-encoding %v, body %q, close %v; want chunked, kept open", tt.proto, res.TransferEncoding, body, res.Close)
			}
			continue
		}
		raw, err := io.ReadAll(conn) // until the close
		if err != nil {
			t.Fatal(err)
		}
		head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
		if strings.Contains(strings.ToLower(head), "transfer-encoding") || !strings.Contains(head, "Connection: close") || body != "first,second" {
			t.Errorf("%s: got %q; want no Transfer-Encoding, Connection: close and the body up to the close", tt.proto, raw)
		}
	}
}

// TestLeanHandlerFraming: the lean writer frames a response by the fields
// the handler set, as it writes them: a Transfer-Encoding of the handler's
// is dropped, a Content-Length that is no length is replaced by the body's,
// a shorter one cuts the body and closes the connection, Connection: close
// closes it, and Date is added only when the handler set none.
func TestLeanHandlerFraming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, leanConfig), newOpener())
	addr := s.Addrs()["http"].String()
	tests := []struct {
		name, query string
		want        []string // lines the head must hold, and each once
		wantNot     []string // line prefixes the head must not hold
		body        string
		closed      bool
	}{
		{"plain", "", []string{"Content-Length: 5"}, []string{"Transfer-Encoding", "Connection"}, "hello", false},
		{"handler's Transfer-Encoding", "f=Transfer-Encoding:gzip", []string{"Content-Length: 5"}, []string{"Transfer-Encoding"}, "hello", false},
		{"no length", "f=Content-Length:five", []string{"Content-Length: 5"}, []string{"Content-Length: five"}, "hello", false},
		{"declared length", "f=Content-Length:5", []string{"Content-Length: 5"}, []string{"Connection"}, "hello", false},
		{"shorter length", "f=Content-Length:3", []string{"Content-Length: 3", "Connection: close"}, nil, "hel", true},
		{"connection close", "f=Connection:x,%20close", []string{"Content-Length: 5", "Connection: x, close"}, nil, "hello", true},
		{"handler's Date", "f=Date:Tue,%2001%20Jan%202030%2000:00:00%20GMT", []string{"Date: Tue, 01 Jan 2030 00:00:00 GMT"}, nil, "hello", false},
	}
	for _, tt := range tests {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /fields?"+tt.query+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		var lines []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: head: %v", tt.name, err)
			}
			if line == "\r\n" {
				break
			}
			lines = append(lines, strings.TrimSuffix(line, "\r\n"))
		}
		body := make([]byte, len(tt.body))
		if _, err := io.ReadFull(br, body); err != nil || string(body) != tt.body {
			t.Errorf("%s: body %q, %v; want %q", tt.name, body, err, tt.body)
		}
		if tt.closed {
			if b, err := br.ReadByte(); err != io.EOF {
				t.Errorf("%s: read after the body: %q, %v; want the connection closed", tt.name, b, err)
			}
		} else {
			// Kept open: a second request on it is answered.
			_, _ = io.WriteString(conn, "GET /fields HTTP/1.1\r\nHost: x\r\n\r\n")
			if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200 ") {
				t.Errorf("%s: second request on the connection: %q, %v; want it answered", tt.name, line, err)
			}
		}
		conn.Close()
		head := strings.Join(lines, "\n")
		count := func(prefix string) int {
			n := 0
			for _, l := range lines {
				if strings.HasPrefix(strings.ToLower(l), strings.ToLower(prefix)) {
					n++
				}
			}
			return n
		}
		for _, w := range tt.want {
			if count(w) != 1 || !slices.Contains(lines, w) {
				t.Errorf("%s: head\n%s\nwants %q once", tt.name, head, w)
			}
		}
		for _, w := range tt.wantNot {
			if count(w) != 0 {
				t.Errorf("%s: head\n%s\nholds %q", tt.name, head, w)
			}
		}
		if count("Date:") != 1 || count("Content-Length:") != 1 {
			t.Errorf("%s: head\n%s\nwants one Date and one Content-Length", tt.name, head)
		}
	}
}

// TestLeanWebSocketEarlyFrame: a WebSocket upgrade is served in the lean
// loop; a frame the client sent right behind the upgrade request (read
// into the loop's buffer with it) reaches the app after the hijack. Over
// cleartext and TLS.
func TestLeanWebSocketEarlyFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, leanConfig), newOpener())
	ts := start(t, e.config(t, leanTLSConfig), newOpener())
	// A masked text frame "hi" (mask 1 2 3 4).
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	const upgrade = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	dials := map[string]func() (net.Conn, error){
		"cleartext": func() (net.Conn, error) { return net.Dial("tcp", s.Addrs()["http"].String()) },
		"tls": func() (net.Conn, error) {
			return tls.Dial("tcp", ts.Addrs()["https"].String(), &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		},
	}
	for name, dial := range dials {
		conn, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(append([]byte(upgrade), frame...)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: status %d, want 101", name, res.StatusCode)
		}
		echo := make([]byte, 4)
		if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "\x81\x02hi" {
			t.Errorf("%s: echo %q, %v; want the early frame echoed", name, echo, err)
		}
	}
}

// TestShutdownWebSocket: an open WebSocket (hijacked from the lean loop)
// does not hold a shutdown for its whole budget (30 s here): the drain
// does not wait for upgraded connections; shutdown closes them.
func TestShutdownWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
shutdownTimeout: 30s
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`), newOpener())
	addr := s.Addrs()["http"].String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws := openEcho(t, ctx, addr, e)
	defer ws.CloseNow()
	if err := s.stop(); err != nil { // the harness allows 10 s
		t.Fatalf("stop with a WebSocket open: %v", err)
	}
	if _, _, err := ws.Read(ctx); err == nil {
		t.Error("WebSocket still open after shutdown")
	}
}
