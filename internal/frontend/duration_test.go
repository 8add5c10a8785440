//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package frontend_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// gateObserver holds the report of each request for a path it gates
// until the test lets that request go.
type gateObserver struct {
	mu    sync.Mutex
	gates map[string]chan struct{} // by request path
}

// gate holds the reports of requests for path until release is called
// (at the latest when the test ends).
func (g *gateObserver) gate(t *testing.T, path string) (release func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.gates[path] = ch
	g.mu.Unlock()
	release = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release)
	return release
}

func (g *gateObserver) RequestDone(d *pipeline.Done) {
	g.mu.Lock()
	ch := g.gates[d.Request.Path]
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// endLog records the paths of the requests it was told ended (a
// pipeline.EndObserver, as Dynamic IP Restrictions is).
type endLog struct {
	mu    sync.Mutex
	ended map[string]bool // by request path
}

func (l *endLog) RequestEnded(r *pipeline.Request) {
	l.mu.Lock()
	l.ended[r.Path] = true
	l.mu.Unlock()
}

func (l *endLog) saw(path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended[path]
}

// doneByPath records a copy of each request's report, by request path.
type doneByPath struct {
	mu   sync.Mutex
	done map[string]pipeline.Done
}

func (l *doneByPath) RequestDone(d *pipeline.Done) {
	c := *d
	c.Request = nil
	l.mu.Lock()
	l.done[d.Request.Path] = c
	l.mu.Unlock()
}

func (l *doneByPath) get(path string) (pipeline.Done, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.done[path]
	return d, ok
}

// durationBackend starts the app of TestDurationCoversAnswerEnd, an
// HTTP/1.1 server on a loopback socket that the forwarder reaches: /ws/
// is a WebSocket that sends wsGreeting, then echoes the client's bytes
// until the client's end, and closes; /stream/ a body of unknown length
// with a trailer; any other path is answered with itself.
func durationBackend(t *testing.T) string {
	t.Helper()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/ws/"):
			if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				http.Error(w, "not a WebSocket upgrade", http.StatusBadRequest)
				return
			}
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n%s",
				base64.StdEncoding.EncodeToString(sum[:]), wsGreeting)
			if brw.Flush() == nil {
				_, _ = io.Copy(c, brw.Reader)
			}
		case strings.HasPrefix(r.URL.Path, "/stream/"):
			w.Header().Set("Trailer", "X-End")
			// Longer than what a writer holds back, so that the answer
			// goes out without a length: chunked, or to the stream's end.
			io.WriteString(w, streamBody)
			w.Header().Set("X-End", "yes")
		default:
			io.WriteString(w, r.URL.Path)
		}
	}))
	t.Cleanup(back.Close)
	return back.Listener.Addr().String()
}

// streamBody is the body of durationBackend's /stream/.
var streamBody = strings.Repeat("streamed ", 8<<10)

// wsGreeting is what the WebSocket of durationBackend sends first.
const wsGreeting = "hi!"

// tunnel is a client's WebSocket through the front door, on any protocol.
type tunnel struct {
	send      func(p []byte) error
	recv      func(n int) ([]byte, error)
	closeSend func() error
	// readEnd reads what is left until the front door ends the tunnel
	// (closes the connection, ends the stream).
	readEnd func() ([]byte, error)
}

// openTunnel opens a WebSocket to path over m: an HTTP/1.1 upgrade (h1,
// https1) or an extended CONNECT (h2c, h2, h3: RFC 8441, RFC 9220). It
// returns once the front door answered it (101, 200).
func openTunnel(t *testing.T, m mode, addr string, p *pki, path string) *tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // bounds a wait, not a speed
	t.Cleanup(cancel)
	tc := &tls.Config{RootCAs: p.caPool, ServerName: "localhost"}
	switch m {
	case h1, https1:
		var c net.Conn
		var err error
		if m == h1 {
			c, err = net.Dial("tcp", addr)
		} else {
			tc.NextProtos = []string{"http/1.1"}
			c, err = tls.Dial("tcp", addr, tc)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", res, err)
		}
		return &tunnel{
			send: func(p []byte) error { _, err := c.Write(p); return err },
			recv: func(n int) ([]byte, error) { b := make([]byte, n); _, err := io.ReadFull(br, b); return b, err },
			closeSend: func() error {
				return c.(interface{ CloseWrite() error }).CloseWrite()
			},
			readEnd: func() ([]byte, error) {
				b, err := io.ReadAll(br)
				if errors.Is(err, io.ErrUnexpectedEOF) { // TLS: the connection closed without close_notify
					err = nil
				}
				return b, err
			},
		}
	}
	var rt http.RoundTripper
	if m == h3 {
		tr := &http3.Transport{TLSClientConfig: tc, Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		}}
		t.Cleanup(func() { tr.Close() })
		rt = tr
	} else {
		tr := &http2.Transport{TLSClientConfig: tc, AllowHTTP: m == h2c,
			DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
				if m == h2c {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}
				d := tls.Dialer{Config: cfg}
				return d.DialContext(ctx, network, addr)
			}}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, m.url("localhost", path), pr)
	if err != nil {
		t.Fatal(err)
	}
	if m == h3 {
		req.Proto = "websocket" // quic-go's client sends it as ":protocol"
	} else {
		req.Header.Set(":protocol", "websocket")
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("extended CONNECT: %s", res.Status)
	}
	return &tunnel{
		send:      func(p []byte) error { _, err := pw.Write(p); return err },
		recv:      func(n int) ([]byte, error) { b := make([]byte, n); _, err := io.ReadFull(res.Body, b); return b, err },
		closeSend: pw.Close,
		readEnd:   func() ([]byte, error) { return io.ReadAll(res.Body) },
	}
}

// TestDurationCoversAnswerEnd checks, on every protocol, that a request
// is reported (its Duration taken: the access log's time-taken, the
// duration metrics) only once the end of its answer was handed to the
// network, as IIS's time-taken, for every kind of answer:
//
//   - answer: a small answer of known length (the lean writer holds all
//     of it, HTTP/2 the END_STREAM flag, HTTP/3 the whole answer and the
//     stream's FIN when the handler returns);
//   - stream: a body of unknown length with a trailer (the last chunk and
//     the trailer, the trailers' HEADERS);
//   - tunnel: a WebSocket (an HTTP/1.1 upgrade, an extended CONNECT over
//     HTTP/2 and HTTP/3), which IIS logs once it closed, with its
//     time-taken covering the whole session and its bytes both ways as
//     the request's (cs-bytes, sc-bytes).
//
// The client reads the whole answer, to the end of its stream (or its
// connection, for a WebSocket over HTTP/1.1), while the request's report
// is held: a report taken before that end is sent holds the end back, and
// the client's read never ends (it gives up after 5 s). The request's end
// (pipeline.EndObserver, IIS's EndRequest) comes before its answer's end
// is sent: by the time the client has its answer, that request no longer
// counts as in progress (not for a WebSocket over HTTP/1.1, whose
// connection the hijacker closes). A tunnel's report covers the interval the test
// held it open for and counts the bytes each way.
func TestDurationCoversAnswerEnd(t *testing.T) {
	t.Parallel()
	back := durationBackend(t)
	e := newEnv(t, "root")
	g := &gateObserver{gates: map[string]chan struct{}{}}
	ends := &endLog{ended: map[string]bool{}}
	done := &doneByPath{done: map[string]pipeline.Done{}}
	chain := &pipeline.Chain{Observers: []pipeline.Observer{g, done}, EndObservers: []pipeline.EndObserver{ends}}
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		h := &proxy.Handler{Backend: fixedBackend(back), RequestTimeout: time.Minute}
		return chainProxyApp{proxyApp{h}, chain}, nil
	}
	srv, err := frontend.New(e.config(t, allProtocolsConfig("")), open, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	for _, kind := range []string{"answer", "stream", "tunnel"} {
		for _, m := range allModes {
			t.Run(kind+"/"+string(m), func(t *testing.T) {
				t.Parallel()
				addr := addrOf(t, s, bindingFor(m), m)
				path := "/" + kind + "/" + string(m)
				if kind == "tunnel" {
					path = "/ws/" + string(m)
				}
				release := g.gate(t, path)
				if kind == "tunnel" {
					checkTunnel(t, m, addr, e.pki, path, ends, done, release)
					return
				}
				c := client(t, m, addr, e.pki, false) // gives up after 5 s
				res, err := c.Get(m.url("localhost", path))
				var body []byte
				if err == nil {
					body, err = io.ReadAll(res.Body)
					res.Body.Close()
				}
				endedFirst := ends.saw(path)
				release()
				if err != nil {
					t.Fatalf("the answer's end did not reach the client while the request's report was held: "+
						"the report was taken before the end was sent (%v)", err)
				}
				if !endedFirst {
					t.Errorf("the client had its answer before the request ended (RequestEnded)")
				}
				want, trailer := path, ""
				if kind == "stream" {
					want, trailer = streamBody, "yes"
				}
				if res.StatusCode != 200 || string(body) != want || res.Trailer.Get("X-End") != trailer {
					t.Errorf("answer %d of %d bytes (%.20q…), trailer %q; want 200 with %d bytes, trailer %q",
						res.StatusCode, len(body), body, res.Trailer.Get("X-End"), len(want), trailer)
				}
			})
		}
	}
}

// checkTunnel is TestDurationCoversAnswerEnd's tunnel over m: a WebSocket
// to path that gets the app's greeting and the echo of one message, then
// the client ends its side, and the app its own. The front door must end
// the tunnel to the client (close the connection, end the stream) while
// the request's report is held (release lets it go); the report then
// covers the interval from the tunnel's opening to the client's end, and
// counts the tunnel's bytes each way.
func checkTunnel(t *testing.T, m mode, addr string, p *pki, path string, ends *endLog, done *doneByPath, release func()) {
	tun := openTunnel(t, m, addr, p, path)
	opened := time.Now()
	const msg = "hello, tunnel"
	got, err := tun.recv(len(wsGreeting))
	if err == nil {
		err = tun.send([]byte(msg))
	}
	var echo []byte
	if err == nil {
		echo, err = tun.recv(len(msg))
	}
	if err != nil || string(got) != wsGreeting || string(echo) != msg {
		release()
		t.Fatalf("through the tunnel: greeting %q, echo %q (%v)", got, echo, err)
	}
	held := time.Since(opened) // the tunnel was open at least this long
	if err := tun.closeSend(); err != nil {
		release()
		t.Fatal(err)
	}
	rest, err := tun.readEnd()
	endedFirst := ends.saw(path)
	_, reported := done.get(path)
	release()
	if err != nil || len(rest) != 0 {
		t.Fatalf("the tunnel's end did not reach the client while the request's report was held: "+
			"the report was taken before the end was sent (read %q, %v)", rest, err)
	}
	if reported {
		t.Errorf("the request was reported before its report was let go")
	}
	// Over HTTP/1.1 the hijacker (the forwarder's relay) closes the
	// connection itself, before serve tells the end observers.
	if !endedFirst && m.proto() > 1 {
		t.Errorf("the client saw the tunnel's end before the request ended (RequestEnded)")
	}
	var d pipeline.Done
	waitFor(t, "the tunnel's report", func() bool { d, reported = done.get(path); return reported })
	status := http.StatusOK
	if m.proto() == 1 {
		status = http.StatusSwitchingProtocols
	}
	if d.Status != status || !d.Upgraded || d.ClientGone {
		t.Errorf("report: status %d, upgraded %v, client gone %v; want %d, true, false", d.Status, d.Upgraded, d.ClientGone, status)
	}
	if d.Duration < held {
		t.Errorf("time-taken %v does not cover the %v the tunnel was open for", d.Duration, held)
	}
	if in, out := int64(len(msg)), int64(len(wsGreeting)+len(msg)); d.BytesIn != in || d.BytesOut != out {
		t.Errorf("bytes in %d, out %d; want the tunnel's %d and %d", d.BytesIn, d.BytesOut, in, out)
	}
}

// TestStreamCountedOutBeforeAnswerEnd: a request over HTTP/2 or HTTP/3
// stops counting against maxConnections (requests in flight) before its
// answer's end is sent, as it stops counting for Dynamic IP Restrictions:
// a client that had its answer and asks again is served, even while the
// first request's report is still held.
func TestStreamCountedOutBeforeAnswerEnd(t *testing.T) {
	t.Parallel()
	for _, m := range []mode{h2c, h2, h3} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "root")
			o := newOpener()
			g := &gateObserver{gates: map[string]chan struct{}{}}
			o.chains = map[string]*pipeline.Chain{"s/": {Observers: []pipeline.Observer{g}}}
			s := start(t, e.config(t, allProtocolsConfig("limits: {maxConnections: 1}\n")), o)
			release := g.gate(t, "/held")
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
			res, err := c.Get(m.url("localhost", "/held"))
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			if err == nil && res.StatusCode != 200 {
				err = fmt.Errorf("status %d", res.StatusCode)
			}
			if err != nil {
				release()
				t.Fatalf("first request: %v", err)
			}
			res, body := get(t, c, m.url("localhost", "/next"))
			release()
			if res.StatusCode != 200 {
				t.Errorf("the next request, once the client had the first's answer: %d, want 200:\n%s", res.StatusCode, body)
			}
		})
	}
}

// allProtocolsConfig is a site served over every protocol (HTTP/1.1 and h2c
// in clear, HTTP/1.1, HTTP/2 and HTTP/3 over TLS), with extra (whole YAML
// lines) at the top level.
func allProtocolsConfig(extra string) string {
	return `
shutdownTimeout: 2s
` + extra + `protocols: {h2c: true, http3: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: root}]
`
}
