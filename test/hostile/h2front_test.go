package hostile_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"golang.org/x/net/http2"
)

// h2FrontYAML is the front door of TestHTTP2FrontDoor: HTTP/2 over TLS on
// the https binding, h2c (prior knowledge) on the http one, and one
// application. maxRequestBytes is small so that the header-limit cases
// are short.
const h2FrontYAML = `
shutdownTimeout: 20s
protocols: {h2c: true}
limits: {maxRequestBytes: 8192}
timeouts: $TIMEOUTS
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: $HTTP_PORT}
      - {name: https, scheme: https, address: 127.0.0.1, port: $HTTPS_PORT, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: root}]
`

// h2Case is one guarantee of the HTTP/2 front door. run gets a front door
// of its own, started with timeouts (YAML, "{}" when empty), whose
// accepted sockets have the smallest buffers if smallSocketBuffers.
type h2Case struct {
	name               string
	timeouts           string
	smallSocketBuffers bool
	run                func(ctx context.Context, t *testing.T, e *h2Env)
}

// TestHTTP2FrontDoor checks what the front door guarantees to HTTP/2
// clients, over TLS (ALPN h2) and over h2c with prior knowledge, with a
// frame-level client (h2Conn) and a real forwarder to an HTTP/1.1 app
// that records what it gets. Each case asserts frames and statuses; none
// sleeps: each waits for the frame or the event it expects.
func TestHTTP2FrontDoor(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"h2", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			for _, c := range h2Cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					timeouts := c.timeouts
					if timeouts == "" {
						timeouts = "{}"
					}
					e := &h2Env{proto: proto, fd: startH2FrontDoor(t, timeouts, c.smallSocketBuffers)}
					c.run(ctx, t, e)
				})
			}
		})
	}
}

var h2Cases = []h2Case{
	{name: "ping-answered", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		data := [8]byte{'g', 'a', 't', 'e', 'h', 'o', 'u', 's'}
		if err := c.write(func(fr *http2.Framer) error { return fr.WritePing(false, data) }); err != nil {
			t.Fatal(err)
		}
		if err := c.waitFor(ctx, "the PING ACK", func() bool { return len(c.pings) > 0 }); err != nil {
			t.Fatal(err)
		}
		c.state(func() {
			if c.pings[0] != data {
				t.Errorf("PING ACK carries %q, want %q", c.pings[0], data)
			}
		})
	}},

	// A body far larger than the stream and connection windows goes
	// through whole, both ways, within the windows each side gave.
	{name: "upload-4MiB", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		body := pattern(4<<20 + 3)
		if err := c.headers(1, e.request("POST", "/echo", "content-length", strconv.Itoa(len(body))), false); err != nil {
			t.Fatal(err)
		}
		if err := c.data(ctx, 1, body, true); err != nil {
			t.Fatal(err)
		}
		saw := e.appAnswer(ctx, t, c, 1)
		if saw.BodyLen != int64(len(body)) || saw.BodySHA != sha(body) || saw.BodyErr != "" {
			t.Errorf("the app read %d bytes (sha256 %s, error %q), want %d (%s)", saw.BodyLen, saw.BodySHA, saw.BodyErr, len(body), sha(body))
		}
		e.noViolation(t, c)
	}},
	{name: "download-4MiB", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		// A stream window of 16 KiB: the server must wait for every
		// WINDOW_UPDATE.
		c := e.dial(ctx, t, h2Settings{initialWindow: 16 << 10})
		n := 4<<20 + 5
		if err := c.headers(1, e.request("GET", "/download?n="+strconv.Itoa(n)), true); err != nil {
			t.Fatal(err)
		}
		st := e.answer(ctx, t, c, 1)
		if st.status != 200 || len(st.body) != n || sha(st.body) != sha(pattern(n)) {
			t.Errorf("got %d with %d bytes (sha256 %s), want 200 with %d (%s)", st.status, len(st.body), sha(st.body), n, sha(pattern(n)))
		}
		e.noViolation(t, c)
	}},

	// Trailers reach the app, and the app's trailers reach the client.
	{name: "trailers-both-ways", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("POST", "/echo", "trailer", "x-req-trailer"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.data(ctx, 1, []byte("hello"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.headers(1, [][2]string{{"x-req-trailer", "v1"}}, true); err != nil {
			t.Fatal(err)
		}
		st := e.answer(ctx, t, c, 1)
		saw := e.decode(t, st)
		if got := saw.Trailer.Values("X-Req-Trailer"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("the app got the request trailer %q, want [v1]", got)
		}
		if got := field(st.trailer, "x-app-trailer"); got != sha([]byte("hello")) {
			t.Errorf("the client got the response trailer x-app-trailer %q, want %q (trailers %v)", got, sha([]byte("hello")), st.trailer)
		}
	}},

	// A client that resets its stream cancels the app's request.
	{name: "rst-stream-cancels-app", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("GET", "/hold/rst"), true); err != nil {
			t.Fatal(err)
		}
		h := e.fd.app.held(ctx, t, "rst")
		if err := c.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.ended:
		case <-ctx.Done():
			t.Fatal("the app's request did not end after the client reset its stream")
		}
		if !h.cancelled {
			t.Error("the app's request ended without its context being cancelled")
		}
		// The connection still serves.
		if err := c.headers(3, e.request("GET", "/echo"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 3); st.status != 200 {
			t.Errorf("a stream after the reset got %d, want 200", st.status)
		}
	}},

	// Streams are independent: one completes while another is held.
	{name: "streams-multiplexed", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("GET", "/hold/first"), true); err != nil {
			t.Fatal(err)
		}
		h := e.fd.app.held(ctx, t, "first")
		if err := c.headers(3, e.request("GET", "/echo"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 3); st.status != 200 {
			t.Errorf("the second stream got %d, want 200", st.status)
		}
		close(h.release)
		if st := e.answer(ctx, t, c, 1); st.status != 200 || string(st.body) != "released" {
			t.Errorf("the held stream got %d %q, want 200 \"released\"", st.status, st.body)
		}
	}},

	// The server announces SETTINGS_MAX_CONCURRENT_STREAMS 100 and keeps
	// to it: with 100 streams open, another is reset (REFUSED_STREAM or
	// PROTOCOL_ERROR, RFC 9113 §5.1.2) without reaching the app, and the
	// 100 complete.
	{name: "max-concurrent-streams", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.waitFor(ctx, "the server's SETTINGS", func() bool { return c.settings > 0 }); err != nil {
			t.Fatal(err)
		}
		var limit uint32
		c.state(func() { limit = c.serverSettings[http2.SettingMaxConcurrentStreams] })
		if limit != 100 {
			t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 100", limit)
		}
		holds := make([]*h2Hold, limit)
		for i := range holds {
			if err := c.headers(uint32(2*i+1), e.request("GET", fmt.Sprintf("/hold/%d", i)), true); err != nil {
				t.Fatal(err)
			}
		}
		for i := range holds {
			holds[i] = e.fd.app.held(ctx, t, strconv.Itoa(i))
		}
		over := uint32(2*limit + 1)
		if err := c.headers(over, e.request("GET", "/echo?over"), true); err != nil {
			t.Fatal(err)
		}
		st := e.answer(ctx, t, c, over)
		if !st.wasReset || st.reset != http2.ErrCodeRefusedStream && st.reset != http2.ErrCodeProtocol {
			t.Errorf("stream %d of %d got status %d, reset %v (%v); want REFUSED_STREAM or PROTOCOL_ERROR", limit+1, limit, st.status, st.wasReset, st.reset)
		}
		for _, h := range holds {
			close(h.release)
		}
		for i := range holds {
			if st := e.answer(ctx, t, c, uint32(2*i+1)); st.status != 200 || string(st.body) != "released" {
				t.Errorf("held stream %d got %d %q, want 200 \"released\"", 2*i+1, st.status, st.body)
			}
		}
		e.fd.app.noneSeen(t)
	}},

	// A graceful stop: the stream in flight completes, the client gets a
	// GOAWAY that covers it, and a stream opened after that GOAWAY is not
	// processed (no app, no answer but REFUSED_STREAM).
	{name: "drain-on-stop", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		e.drain(ctx, t, func() {
			go func() { _ = e.fd.stop() }()
		})
	}},
	// The same when a reload replaces the listener's server (the timeouts
	// changed): its connections drain.
	{name: "drain-on-reload", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		e.drain(ctx, t, func() {
			if err := e.fd.srv.Reload(ctx, e.fd.config(t, "{idle: 119s}")); err != nil {
				t.Errorf("reload: %v", err)
			}
		})
	}},

	// timeouts.idle closes an HTTP/2 connection with no stream open,
	// with a GOAWAY that says every stream was processed.
	{name: "idle-timeout-goaway", timeouts: "{idle: 1s}", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("GET", "/echo"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 1); st.status != 200 {
			t.Fatalf("got %d, want 200", st.status)
		}
		if err := c.waitFor(ctx, "a GOAWAY", func() bool { return len(c.goaways) > 0 }); err != nil {
			t.Fatal(err)
		}
		if err := c.closed(ctx); err != nil {
			t.Fatalf("after the GOAWAY: %v", err)
		}
		c.state(func() {
			last := c.goaways[len(c.goaways)-1]
			if last.code != http2.ErrCodeNo || last.lastStreamID != 1 {
				t.Errorf("GOAWAY %v, last stream %d; want NO_ERROR, 1", last.code, last.lastStreamID)
			}
		})
	}},

	// timeouts.idle spares a connection with a stream open: another
	// connection, idle since later, is closed first, and the busy one's
	// stream then completes.
	{name: "idle-timeout-spares-busy", timeouts: "{idle: 1s}", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		busy := e.dial(ctx, t, h2Settings{})
		if err := busy.headers(1, e.request("GET", "/hold/busy"), true); err != nil {
			t.Fatal(err)
		}
		h := e.fd.app.held(ctx, t, "busy")
		idle := e.dial(ctx, t, h2Settings{})
		if err := idle.headers(1, e.request("GET", "/echo"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, idle, 1); st.status != 200 {
			t.Fatalf("got %d, want 200", st.status)
		}
		if err := idle.closed(ctx); err != nil {
			t.Fatalf("the idle connection: %v", err)
		}
		// A PING's answer comes after any GOAWAY sent before it.
		if err := busy.write(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{'b', 'u', 's', 'y'}) }); err != nil {
			t.Fatal(err)
		}
		if err := busy.waitFor(ctx, "the PING ACK", func() bool { return len(busy.pings) > 0 }); err != nil {
			t.Fatal(err)
		}
		busy.state(func() {
			if len(busy.goaways) > 0 {
				t.Errorf("the connection with a stream open got GOAWAY %v", busy.goaways)
			}
		})
		close(h.release)
		if st := e.answer(ctx, t, busy, 1); st.status != 200 || string(st.body) != "released" {
			t.Errorf("the busy connection's stream got %d %q, want 200 \"released\"", st.status, st.body)
		}
	}},

	// Request heads over maxRequestBytes (8 KiB) are refused with 431 by
	// the front door; heads over twice that, the server's own cap, by the
	// server: with 431 when the head exceeds it in its last frame, else
	// (CONTINUATION frames past the cap, or one field longer than the cap,
	// which HPACK does not decode) with the connection closed.
	{name: "header-list-over-limit", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		fields := func(n int) []string {
			f := make([]string, 0, 2*n)
			for i := range n {
				f = append(f, fmt.Sprintf("x-big-%d", i), strings.Repeat("h", 1<<10))
			}
			return f
		}
		for _, head := range []struct {
			what  string
			extra []string
			// status is the answer, 0 for the connection closed.
			status int
		}{
			{"one 10 KiB field", []string{"x-big", strings.Repeat("h", 10<<10)}, 431},
			{"20 fields of 1 KiB", fields(20), 431},
			{"40 fields of 1 KiB", fields(40), 0},
			{"one 40 KiB field", []string{"x-big", strings.Repeat("h", 40<<10)}, 0},
		} {
			c := e.dial(ctx, t, h2Settings{})
			if err := c.headers(1, e.request("GET", "/echo", head.extra...), true); err != nil {
				// The server may close the connection while the head's
				// last frames are still on their way.
				if head.status != 0 || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
					t.Fatal(err)
				}
			}
			if head.status == 0 {
				if err := c.closed(ctx); err != nil {
					t.Errorf("%s: %v", head.what, err)
				}
			} else if err := c.waitFor(ctx, "the answer", func() bool { return c.streams[1].ended || c.streams[1].wasReset }); err != nil {
				t.Errorf("%s: %v", head.what, err)
			}
			c.state(func() {
				if st := c.streams[1]; st.status != head.status || st.wasReset {
					t.Errorf("%s: status %d, reset %v (%v); want %d (0: the connection closed)", head.what, st.status, st.wasReset, st.reset, head.status)
				}
			})
		}
		e.fd.app.noneSeen(t)
	}},

	// A body that disagrees with its content-length never reaches the
	// app as a whole request: the stream is reset with PROTOCOL_ERROR
	// (RFC 9113 §8.1.1), shorter or longer.
	{name: "content-length-mismatch", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("POST", "/echo", "content-length", "10"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.data(ctx, 1, []byte("short"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 1); !st.wasReset || st.reset != http2.ErrCodeProtocol {
			t.Errorf("5 bytes for content-length 10: status %d, reset %v (%v); want RST_STREAM PROTOCOL_ERROR", st.status, st.wasReset, st.reset)
		}
		c = e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("POST", "/echo", "content-length", "5"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.data(ctx, 1, []byte("much too long"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 1); !st.wasReset || st.reset != http2.ErrCodeProtocol {
			t.Errorf("13 bytes for content-length 5: status %d, reset %v (%v); want RST_STREAM PROTOCOL_ERROR", st.status, st.wasReset, st.reset)
		}
		e.fd.app.noneComplete(t)
	}},
	// A HEAD request's content is content too (RFC 9113 §8.1.1 exempts
	// the responses to HEAD, not the requests).
	{name: "content-length-mismatch-head", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("HEAD", "/echo", "content-length", "5"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.data(ctx, 1, []byte("much too long"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 1); !st.wasReset || st.reset != http2.ErrCodeProtocol {
			t.Errorf("HEAD with 13 bytes for content-length 5: status %d, reset %v (%v); want RST_STREAM PROTOCOL_ERROR", st.status, st.wasReset, st.reset)
		}
		c = e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("HEAD", "/echo", "content-length", "10"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.data(ctx, 1, []byte("short"), true); err != nil {
			t.Fatal(err)
		}
		if st := e.answer(ctx, t, c, 1); !st.wasReset || st.reset != http2.ErrCodeProtocol {
			t.Errorf("HEAD with 5 bytes for content-length 10: status %d, reset %v (%v); want RST_STREAM PROTOCOL_ERROR", st.status, st.wasReset, st.reset)
		}
		e.fd.app.noneComplete(t)
	}},

	// The pairing token is Gatehouse's: a client's never reaches the app,
	// the app's never reaches the client. X-Forwarded-For and -Proto end
	// with what Gatehouse saw.
	{name: "token-and-forwarded-headers", run: func(ctx context.Context, t *testing.T, e *h2Env) {
		c := e.dial(ctx, t, h2Settings{})
		if err := c.headers(1, e.request("GET", "/echo", "ms-aspnetcore-token", "forged", "x-forwarded-for", "203.0.113.9",
			"x-forwarded-proto", "gopher"), true); err != nil {
			t.Fatal(err)
		}
		st := e.answer(ctx, t, c, 1)
		saw := e.decode(t, st)
		if got := saw.Header.Values("Ms-Aspnetcore-Token"); len(got) != 1 || got[0] != "corpus-token" {
			t.Errorf("the app got the pairing token %q, want exactly the lease's", got)
		}
		xff := entries(saw.Header.Values("X-Forwarded-For"))
		if want := []string{"203.0.113.9", c.conn.LocalAddr().String()}; strings.Join(xff, ",") != strings.Join(want, ",") {
			t.Errorf("the app got X-Forwarded-For %q, want %q", xff, want)
		}
		xfp := entries(saw.Header.Values("X-Forwarded-Proto"))
		if want := []string{"gopher", e.scheme()}; strings.Join(xfp, ",") != strings.Join(want, ",") {
			t.Errorf("the app got X-Forwarded-Proto %q, want %q", xfp, want)
		}
		for _, f := range append(st.header, st.trailer...) {
			if strings.HasPrefix(f.Name, "ms-aspnetcore") {
				t.Errorf("the client got %s: %s from the app", f.Name, f.Value)
			}
		}
	}},

	// A client that sends frames that each need an answer and reads none
	// is closed before the answers it left pile up without bound: it
	// never gets to send a million of them. With the send timeout at 2 s,
	// a server that stops reading instead closes the connection then.
	{name: "ping-flood", timeouts: "{send: 2s}", smallSocketBuffers: true, run: func(ctx context.Context, t *testing.T, e *h2Env) {
		e.flood(ctx, t, pingFrame)
	}},
	{name: "settings-flood", timeouts: "{send: 2s}", smallSocketBuffers: true, run: func(ctx context.Context, t *testing.T, e *h2Env) {
		e.flood(ctx, t, settingsFrame)
	}},
}

// h2Env is one case's front door and protocol ("h2" or "h2c").
type h2Env struct {
	proto string
	fd    *h2FrontDoor
}

func (e *h2Env) scheme() string {
	if e.proto == "h2" {
		return "https"
	}
	return "http"
}

// dialTCP connects to the listener of e's protocol, with TLS and ALPN h2
// for "h2", and the smallest socket buffers if small.
func (e *h2Env) dialTCP(ctx context.Context, t *testing.T, small bool) net.Conn {
	t.Helper()
	d := &net.Dialer{}
	if small {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = smallBuffers(fd) })
			return errors.Join(err, serr)
		}
	}
	var conn net.Conn
	var err error
	if e.proto == "h2" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: &tls.Config{RootCAs: e.fd.roots, ServerName: "localhost", NextProtos: []string{"h2"}}}).
			DialContext(ctx, "tcp", e.fd.tlsAddr)
		if err == nil && conn.(*tls.Conn).ConnectionState().NegotiatedProtocol != "h2" {
			err = errors.New("ALPN did not pick h2")
		}
	} else {
		conn, err = d.DialContext(ctx, "tcp", e.fd.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// dial opens an h2Conn, closed at the end of the test.
func (e *h2Env) dial(ctx context.Context, t *testing.T, s h2Settings) *h2Conn {
	t.Helper()
	conn := e.dialTCP(ctx, t, false)
	c, err := newH2Conn(conn, s)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// request returns a request's fields: the pseudo-header fields, then
// extra as name, value pairs.
func (e *h2Env) request(method, path string, extra ...string) [][2]string {
	f := [][2]string{{":method", method}, {":scheme", e.scheme()}, {":authority", "localhost"}, {":path", path}}
	for i := 0; i+1 < len(extra); i += 2 {
		f = append(f, [2]string{extra[i], extra[i+1]})
	}
	return f
}

// answer waits for stream id's end and returns it.
func (e *h2Env) answer(ctx context.Context, t *testing.T, c *h2Conn, id uint32) h2Stream {
	t.Helper()
	st, err := c.response(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// appAnswer waits for stream id's answer, which must be the app's 200,
// and returns what the app saw.
func (e *h2Env) appAnswer(ctx context.Context, t *testing.T, c *h2Conn, id uint32) h2Seen {
	t.Helper()
	return e.decode(t, e.answer(ctx, t, c, id))
}

// decode returns what the app saw of the request st answers, which must
// be the app's 200.
func (e *h2Env) decode(t *testing.T, st h2Stream) h2Seen {
	t.Helper()
	if st.status != 200 || field(st.header, "x-h2-app") == "" {
		t.Fatalf("got %d (reset %v %v), want the app's 200: %q", st.status, st.wasReset, st.reset, st.body)
	}
	var saw h2Seen
	if err := json.Unmarshal(st.body, &saw); err != nil {
		t.Fatalf("the app's answer %q: %v", st.body, err)
	}
	return saw
}

// noViolation checks that the server kept within the windows c gave it.
func (e *h2Env) noViolation(t *testing.T, c *h2Conn) {
	t.Helper()
	c.state(func() {
		if c.violation != "" {
			t.Errorf("flow control: %s", c.violation)
		}
	})
}

// drain holds a stream in flight, calls stop (which makes the front door
// drain the connection), then checks that the stream completes, that the
// GOAWAY covers it, and that a stream opened after the GOAWAY is not
// processed.
func (e *h2Env) drain(ctx context.Context, t *testing.T, stop func()) {
	c := e.dial(ctx, t, h2Settings{})
	if err := c.headers(1, e.request("GET", "/hold/drain"), true); err != nil {
		t.Fatal(err)
	}
	h := e.fd.app.held(ctx, t, "drain")
	stop()
	// The GOAWAY that names the last stream processed (a server may send
	// one with 2^31-1 first, as a warning).
	if err := c.waitFor(ctx, "the final GOAWAY", func() bool {
		return len(c.goaways) > 0 && c.goaways[len(c.goaways)-1].lastStreamID < 1<<31-1
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.headers(3, e.request("GET", "/echo?late"), true); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	st := e.answer(ctx, t, c, 1)
	if st.status != 200 || string(st.body) != "released" {
		t.Errorf("the stream in flight got %d %q, want 200 \"released\"", st.status, st.body)
	}
	if err := c.closed(ctx); err != nil {
		t.Fatalf("after the drain: %v", err)
	}
	c.state(func() {
		last := c.goaways[len(c.goaways)-1]
		if last.code != http2.ErrCodeNo || last.lastStreamID != 1 {
			t.Errorf("GOAWAY %v, last stream %d; want NO_ERROR, 1", last.code, last.lastStreamID)
		}
		if late := c.streams[3]; late.status != 0 || late.wasReset && late.reset != http2.ErrCodeRefusedStream {
			t.Errorf("the stream opened after the GOAWAY got status %d, reset %v (%v); want no answer or REFUSED_STREAM",
				late.status, late.wasReset, late.reset)
		}
	})
	e.fd.app.noneSeen(t)
}

// flood writes floodFrames copies of frame (one whole frame that asks
// for an answer) on a connection whose client reads nothing, with the
// smallest socket buffers on both ends (the front door's from
// smallSocketBuffers), so that the server reads the frames as they are
// written and its answers wait in the server. The answers the server cannot send must
// not pile up without bound: it closes the connection (a write fails; a
// server that stops reading closes it when its send timeout ends), or
// sends fewer answers than half the frames once the client reads
// (SETTINGS ACKs may be merged). The kernel holds a few KiB of them, so a
// server that kept an answer for each frame would send them all. A
// server that neither reads nor closes the connection fails the test at
// the client's deadline.
func (e *h2Env) flood(ctx context.Context, t *testing.T, frame []byte) {
	conn := e.dialTCP(ctx, t, true)
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d.Add(-5 * time.Second))
	}
	fr := http2.NewFramer(conn, conn)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	gone := func(when string, err error) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the server stopped reading %s and kept the connection past its send timeout", when)
		} else {
			t.Logf("the server closed the connection %s: %v", when, err)
		}
	}
	const perWrite = 4096
	chunk := bytes.Repeat(frame, perWrite)
	for i := 0; i < floodFrames; i += perWrite {
		if _, err := conn.Write(chunk); err != nil {
			gone(fmt.Sprintf("after at most %d frames", i+perWrite), err)
			return
		}
	}
	// Read what the server answered, up to the answer to a last PING.
	last := [8]byte{'l', 'a', 's', 't'}
	if err := fr.WritePing(false, last); err != nil {
		gone("after the flood", err)
		return
	}
	answers := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			gone(fmt.Sprintf("while the client read (%d answers read)", answers), err)
			return
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() && f.Data == last {
				t.Logf("the server answered %d of %d frames", answers, floodFrames)
				if answers > floodFrames/2 {
					t.Errorf("the server kept %d answers for a client that read none, of %d frames", answers, floodFrames)
				}
				return
			}
			if f.IsAck() {
				answers++
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				answers++
			}
		}
	}
}

// floodFrames is how many frames flood sends.
const floodFrames = 200_000

// settingsFrame and pingFrame are an empty SETTINGS frame and a PING.
var (
	settingsFrame = []byte{0, 0, 0, byte(http2.FrameSettings), 0, 0, 0, 0, 0}
	pingFrame     = []byte{0, 0, 8, byte(http2.FramePing), 0, 0, 0, 0, 0, 'f', 'l', 'o', 'o', 'd', 0, 0, 0}
)

// smallBuffers gives the socket fd the smallest send and receive buffers
// (the kernel's minimum, a few KiB), and turns off their growth.
func smallBuffers(fd uintptr) error {
	return errors.Join(syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096),
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096))
}

// entries splits the values of a comma-separated field into its entries.
func entries(values []string) []string {
	var out []string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// pattern returns n bytes that both sides of a transfer can make.
func pattern(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'g', 'a', 't', 'e'}).Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// h2FrontDoor is a running front door in front of one h2App.
type h2FrontDoor struct {
	srv           *frontend.Server
	addr, tlsAddr string
	roots         *x509.CertPool
	app           *h2App
	dir           string
	ports         []string     // of the http and the https binding
	stop          func() error // stops Run (a drain); once
}

// startH2FrontDoor starts a front door with the site timeouts (YAML) and
// its app; both stop at the end of the test. Its listening sockets are
// the test's, handed over as inherited ones, so that smallSocketBuffers can
// give the sockets they accept the smallest buffers (smallBuffers).
func startH2FrontDoor(t *testing.T, timeouts string, smallSocketBuffers bool) *h2FrontDoor {
	t.Helper()
	fd := &h2FrontDoor{dir: t.TempDir(), app: startH2App(t)}
	var lc net.ListenConfig
	if smallSocketBuffers {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = smallBuffers(fd) })
			return errors.Join(err, serr)
		}
	}
	lns := map[string]net.Listener{}
	for _, name := range []string{"http", "https"} {
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[name] = ln
		fd.ports = append(fd.ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	if err := os.MkdirAll(filepath.Join(fd.dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fd.dir, "root", "web.config"), []byte("<configuration/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, fd.roots = writeCert(t, fd.dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	open := func(_ context.Context, spec frontend.AppSpec) (frontend.App, error) {
		// A frontDoor of its own for proxied's counters, which no case reads.
		return &proxied{Handler: proxy.Handler{Backend: fixed(fd.app.addr), Log: log}, fd: &frontDoor{}}, nil
	}
	s, err := frontend.New(fd.config(t, timeouts), open, log)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		t.Fatal(err)
	}
	for _, ln := range lns {
		s.Inherit("", ln) // taken by the binding on its address; closed by s
	}
	fd.srv = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	fd.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := fd.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Listening():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	fd.addr, fd.tlsAddr = s.Addrs()["http"].String(), s.Addrs()["https"].String()
	return fd
}

// config writes the site config with timeouts and loads it.
func (fd *h2FrontDoor) config(t *testing.T, timeouts string) *siteconfig.Config {
	t.Helper()
	file := filepath.Join(fd.dir, "gatehouse.yaml")
	yaml := strings.NewReplacer("$CERT", filepath.Join(fd.dir, "cert.pem"), "$KEY", filepath.Join(fd.dir, "key.pem"),
		"$TIMEOUTS", timeouts, "$HTTP_PORT", fd.ports[0], "$HTTPS_PORT", fd.ports[1]).Replace(h2FrontYAML)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := siteconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// h2Seen is what h2App saw of a request it read in full (or failed to).
type h2Seen struct {
	Path    string
	Header  http.Header
	Trailer http.Header
	BodyLen int64
	BodySHA string
	BodyErr string
}

// h2Hold is a request to /hold/KEY: the app holds it until release is
// closed (it then answers "released") or its context ends.
type h2Hold struct {
	entered, release, ended chan struct{}
	cancelled               bool // set before ended is closed
}

// h2App is the app of TestHTTP2FrontDoor, an HTTP/1.1 server:
//   - /echo reads the body and answers 200 with what it saw (h2Seen), the
//     trailer X-App-Trailer (the body's SHA-256), and a pairing token of
//     its own that must not reach the client;
//   - /download?n=N answers N bytes of pattern;
//   - /hold/KEY holds the request (see h2Hold).
//
// Every answer has X-H2-App.
type h2App struct {
	addr string
	mu   sync.Mutex
	seen []h2Seen
	hold map[string]*h2Hold
}

func startH2App(t *testing.T) *h2App {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &h2App{addr: ln.Addr().String(), hold: map[string]*h2Hold{}}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return a
}

func (a *h2App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-H2-App", "1")
	switch {
	case r.URL.Path == "/download":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(pattern(n))
	case strings.HasPrefix(r.URL.Path, "/hold/"):
		h := a.holdFor(strings.TrimPrefix(r.URL.Path, "/hold/"))
		close(h.entered)
		select {
		case <-h.release:
			_, _ = io.WriteString(w, "released")
		case <-r.Context().Done():
			h.cancelled = true
		}
		close(h.ended)
	default:
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		s := h2Seen{Path: r.URL.Path, Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), BodyLen: n, BodySHA: hex.EncodeToString(h.Sum(nil))}
		if err != nil {
			s.BodyErr = err.Error()
		}
		a.mu.Lock()
		a.seen = append(a.seen, s)
		a.mu.Unlock()
		w.Header().Set("Trailer", "X-App-Trailer")
		w.Header().Set("MS-ASPNETCORE-TOKEN", "app-token")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
		w.Header().Set("X-App-Trailer", s.BodySHA)
	}
}

// holdFor returns the hold of key, made at first use.
func (a *h2App) holdFor(key string) *h2Hold {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hold[key]
	if h == nil {
		h = &h2Hold{entered: make(chan struct{}), release: make(chan struct{}), ended: make(chan struct{})}
		a.hold[key] = h
	}
	return h
}

// held waits until the request to /hold/key has reached the app.
func (a *h2App) held(ctx context.Context, t *testing.T, key string) *h2Hold {
	t.Helper()
	h := a.holdFor(key)
	select {
	case <-h.entered:
	case <-ctx.Done():
		t.Fatalf("the request to /hold/%s did not reach the app", key)
	}
	return h
}

// noneSeen checks that no request but holds reached the app.
func (a *h2App) noneSeen(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.seen {
		t.Errorf("the app got a request for %s (%d bytes of body, error %q)", s.Path, s.BodyLen, s.BodyErr)
	}
}

// noneComplete checks that every request body the app read ended in an
// error: none reached it whole.
func (a *h2App) noneComplete(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.seen {
		if s.BodyErr == "" {
			t.Errorf("the app read a whole request for %s with %d bytes of body (content-length %q)", s.Path, s.BodyLen, s.Header.Get("Content-Length"))
		}
	}
}
