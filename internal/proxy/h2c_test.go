package proxy

import (
	"bufio"
	"bytes"
	"context"
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

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/batchconn"
	"github.com/gatehouse/gatehouse/internal/logtest"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// newH2CServer starts an app that speaks only HTTP/2 with prior knowledge.
func newH2CServer(t *testing.T, app http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(app)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// newH2CFront starts a front end forwarding through h, reachable over h2c,
// and returns it with a client that speaks h2c to it. describe, if given,
// changes each request's description as the front door's stages would.
func newH2CFront(t *testing.T, h *Handler, describe ...func(*pipeline.Request)) (*httptest.Server, *http.Client) {
	t.Helper()
	t.Cleanup(h.CloseIdleConnections)
	fh := forwardHandler{h: h}
	if len(describe) > 0 {
		fh.describe = describe[0]
	}
	front := httptest.NewUnstartedServer(fh)
	front.Config.Protocols = new(http.Protocols)
	front.Config.Protocols.SetUnencryptedHTTP2(true)
	front.Start()
	t.Cleanup(front.Close)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return front, &http.Client{Transport: tr}
}

// TestH2CForward checks a request to an h2c app: HTTP/2 on the way to the
// app, the ANCM fields added by the same rules (the identity the stages
// found in place of the client's spoofed module field), trailers both
// ways, and no User-Agent of the transport's own.
func TestH2CForward(t *testing.T) {
	t.Parallel()
	type seen struct {
		proto, token, xff, xfp, user, ua, trailer, body string
	}
	got := make(chan seen, 1)
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Proto, r.Header.Get("Ms-Aspnetcore-Token"), r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Proto"), strings.Join(r.Header.Values("Ms-Aspnetcore-User"), ","), strings.Join(r.Header.Values("User-Agent"), ","),
			r.Trailer.Get("X-Req-Sum"), string(b)}
		w.Header().Set("Trailer", "X-Res-Sum")
		w.Header().Set("Content-Type", "application/grpc")
		_, _ = io.WriteString(w, "answer")
		w.Header().Set("X-Res-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true, ForwardIdentity: true}
	front, c := newH2CFront(t, h, func(r *pipeline.Request) {
		r.Identity = &pipeline.Identity{Name: "alice", Scheme: "Basic"}
	})

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/svc/Method", pr)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("MS-ASPNETCORE-USER", "spoof")
	req.Header["User-Agent"] = nil
	req.Trailer = http.Header{"X-Req-Sum": nil}
	go func() {
		_, _ = io.WriteString(pw, "question")
		req.Trailer.Set("X-Req-Sum", "7")
		_ = pw.Close()
	}()
	res, body := get(t, c, req)
	s := <-got
	if s.proto != "HTTP/2.0" || s.token != testToken || s.xfp != "http" || !strings.HasPrefix(s.xff, "127.0.0.1:") ||
		s.user != "alice" || s.ua != "" || s.trailer != "7" || s.body != "question" {
		t.Errorf("app saw %+v", s)
	}
	if res.StatusCode != 200 || body != "answer" || res.Trailer.Get("X-Res-Sum") != "42" || res.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("client got %d %q trailers %v", res.StatusCode, body, res.Trailer)
	}
}

// TestH2CFullDuplex checks that the app's answer streams while the request
// is still being sent: each line the client sends is echoed back before it
// sends the next.
func TestH2CFullDuplex(t *testing.T) {
	t.Parallel()
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			_, _ = io.WriteString(w, "echo "+sc.Text()+"\n")
			w.(http.Flusher).Flush()
		}
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true}
	front, c := newH2CFront(t, h)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/bidi", pr)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for _, m := range []string{"one", "two", "three"} {
		if _, err := io.WriteString(pw, m+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "echo "+m+"\n" {
			t.Fatalf("read %q, %v; want the echo of %q before the request ends", line, err, m)
		}
	}
	_ = pw.Close()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the request ended: %q, %v", rest, err)
	}
}

// oneConnApp listens on a loopback port, accepts one connection, reads the
// client's HTTP/2 preface and hands the connection to serve; the
// connection is closed when serve returns. It returns the address.
func oneConnApp(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	// Runs first: an app never connected to must not hold the test up.
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		serve(c.(*net.TCPConn))
	}()
	return ln.Addr().String()
}

// refusingApp accepts one HTTP/2 connection and refuses its first stream:
// with GOAWAY (last stream id 0, NO_ERROR) when goAway is set, else with
// RST_STREAM(REFUSED_STREAM). Either way the request was not processed.
func refusingApp(t *testing.T, goAway bool) string {
	return framesApp(t, func(c *net.TCPConn, fr *http2.Framer, f http2.Frame) bool {
		hf, ok := f.(*http2.HeadersFrame)
		switch {
		case !ok:
			return false
		case !goAway:
			_ = fr.WriteRSTStream(hf.StreamID, http2.ErrCodeRefusedStream)
			return false
		}
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		// Read on until the client closes, so it sees the GOAWAY.
		_, _ = io.Copy(io.Discard, c)
		return true
	})
}

// framesApp is oneConnApp with an HTTP/2 server that sends its (empty)
// SETTINGS and hands each frame it reads to frame, until frame reports
// that it is done or the connection fails.
func framesApp(t *testing.T, frame func(c *net.TCPConn, fr *http2.Framer, f http2.Frame) (done bool)) string {
	t.Helper()
	return oneConnApp(t, func(c *net.TCPConn) {
		fr := http2.NewFramer(c, c)
		_ = fr.WriteSettings()
		for {
			f, err := fr.ReadFrame()
			if err != nil || frame(c, fr, f) {
				return
			}
		}
	})
}

// TestH2CNotProcessed checks that a POST with a body whose stream the app
// did not process (GOAWAY above it, or REFUSED_STREAM) is sent again to a
// process acquired anew, body and all.
func TestH2CNotProcessed(t *testing.T) {
	t.Parallel()
	for _, goAway := range []bool{true, false} {
		name := "REFUSED_STREAM"
		if goAway {
			name = "GOAWAY"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testNotProcessed(t, goAway)
		})
	}
}

func testNotProcessed(t *testing.T, goAway bool) {
	bodies := make(chan string, 1)
	good := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		_, _ = io.WriteString(w, "processed")
	})
	bad := refusingApp(t, goAway)
	b := &fakeBackend{}
	b.acquire = func(n int) (*upstream.Lease, error) {
		if n == 1 {
			return b.lease(bad, 1, nil), nil
		}
		return b.lease(good.Listener.Addr().String(), 2, nil), nil
	}
	h := &Handler{Backend: b, H2C: true}
	front, c := newH2CFront(t, h)
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/order", strings.NewReader("one order"))
	res, body := get(t, c, req)
	if res.StatusCode != 200 || body != "processed" {
		t.Fatalf("got %d %q, want the second process's answer", res.StatusCode, body)
	}
	if got := <-bodies; got != "one order" {
		t.Errorf("second process got body %q", got)
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("acquired %d times, want 2", n)
	}
	b.waitReleased(t, 2)
}

// TestGRPCAnswers checks that a gRPC client gets a trailers-only gRPC
// status, never a page, for the answers the forwarder makes itself: the
// app offline (UNAVAILABLE), and the app unreachable (502.3, UNAVAILABLE).
// A gRPC-Web client gets it in its own content type.
func TestGRPCAnswers(t *testing.T) {
	t.Parallel()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close() // nothing listens there now: connections are refused
	for _, tt := range []struct {
		name string
		b    *fakeBackend
		msg  string
	}{
		{"offline", &fakeBackend{acquire: func(int) (*upstream.Lease, error) { return nil, upstream.ErrOffline }},
			"HTTP Error 503 - Service Unavailable: the app is offline (app_offline.htm)"},
		{"unreachable", fixed(deadAddr), "HTTP Error 502.3 - Bad Gateway: the connection to the app failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			front, c := newH2CFront(t, &Handler{Backend: tt.b, H2C: true, GRPCWeb: true})
			// A gRPC-Web client gets its own content type back.
			for ct, want := range map[string]string{
				"application/grpc+proto":    "application/grpc",
				"application/grpc-web-text": "application/grpc-web-text",
			} {
				req, _ := http.NewRequest(http.MethodPost, front.URL+"/svc/M", strings.NewReader("\x00\x00\x00\x00\x00"))
				req.Header.Set("Content-Type", ct)
				res, body := get(t, c, req)
				if res.StatusCode != 200 || body != "" || res.Header.Get("Grpc-Status") != "14" ||
					res.Header.Get("Content-Type") != want {
					t.Fatalf("%s: got %d %q header %v; want 200, no body, grpc-status 14, %s", ct, res.StatusCode, body, res.Header, want)
				}
				if got := res.Header.Get("Grpc-Message"); got != tt.msg {
					t.Errorf("%s: grpc-message %q, want %q", ct, got, tt.msg)
				}
			}
		})
	}
}

// TestH2CRequestTimeoutStreams checks what requestTimeout means for an h2c
// stream: a response that keeps sending lasts well past it, and a stream
// silent both ways for requestTimeout is reset, the app's stream cancelled.
func TestH2CRequestTimeoutStreams(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	cancelled := make(chan struct{})
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		if r.URL.Path == "/silent" {
			<-r.Context().Done()
			close(cancelled)
			return
		}
		// Keeps sending for 5 requestTimeouts, a piece every quarter.
		for i := 0; i < 20; i++ {
			_, _ = io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			select {
			case <-time.After(timeout / 4):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true, RequestTimeout: timeout}
	front, c := newH2CFront(t, h)

	req, _ := http.NewRequest(http.MethodGet, front.URL+"/stream", nil)
	res, body := get(t, c, req)
	if res.StatusCode != 200 || strings.Count(body, "tick\n") != 20 || res.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("a stream that keeps sending: %d, %d ticks, trailers %v; want all 20 and the trailer",
			res.StatusCode, strings.Count(body, "tick\n"), res.Trailer)
	}

	req, _ = http.NewRequest(http.MethodGet, front.URL+"/silent", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Error("a stream silent for requestTimeout ended cleanly; want it reset")
	}
	<-cancelled // the app's stream was cancelled
}

// TestH2CGRPCTimeout checks that grpc-timeout reaches the app and bounds
// the stream here too: the client gets DEADLINE_EXCEEDED, before the app's
// header as a trailers-only answer, after it in the trailers, and the
// app's stream is cancelled; with and without a (longer) requestTimeout,
// which shares its timer.
func TestH2CGRPCTimeout(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{0, 10 * time.Second} {
		t.Run(fmt.Sprintf("requestTimeout=%v", timeout), func(t *testing.T) {
			t.Parallel()
			testH2CGRPCTimeout(t, timeout)
		})
	}
}

func testH2CGRPCTimeout(t *testing.T, requestTimeout time.Duration) {
	seen := make(chan string, 2)
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Grpc-Timeout")
		if r.URL.Path == "/after-header" {
			w.Header().Set("Content-Type", "application/grpc")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	logs := logtest.New()
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true, RequestTimeout: requestTimeout, Log: logs.Logger()}
	front, c := newH2CFront(t, h)
	// The client's own deadline is routine for gRPC: logged, never as an
	// error of the app or the gateway.
	defer func() {
		for _, rec := range logs.Find("") {
			if rec.Level >= slog.LevelWarn {
				logs.Dump(t)
				t.Errorf("logged at %s: %q %v", rec.Level, rec.Msg, rec.Attrs)
			}
		}
	}()
	for _, path := range []string{"/before-header", "/after-header"} {
		req, _ := http.NewRequest(http.MethodPost, front.URL+path, strings.NewReader("\x00\x00\x00\x00\x00"))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Grpc-Timeout", "200m")
		res, _ := get(t, c, req)
		status := res.Header.Get("Grpc-Status")
		if status == "" {
			status = res.Trailer.Get("Grpc-Status")
		}
		if res.StatusCode != 200 || status != "4" {
			t.Errorf("%s: %d, grpc-status %q; want 200 and 4 (DEADLINE_EXCEEDED)", path, res.StatusCode, status)
		}
		if got := <-seen; got != "200m" {
			t.Errorf("%s: the app got grpc-timeout %q", path, got)
		}
	}
}

// TestH2CGRPCTimeoutAppFirst checks the answer when the app's own
// grpc-timeout runs out before Gatehouse's timer has run, as on a loaded
// machine: the app holds the stream to the grpc-timeout it was passed and
// resets it (RST_STREAM CANCEL, as grpc-go does) once it expires. The
// client gets DEADLINE_EXCEEDED, before the app's header as a
// trailers-only answer and after it in the trailers, not a 502.3
// (UNAVAILABLE) blaming the app, nor a reset. Gatehouse's timer is held
// back for the test (Handler.afterFunc); the app's starts when the request
// arrives, after Gatehouse's deadline was set, so the reset comes after it.
func TestH2CGRPCTimeoutAppFirst(t *testing.T) {
	t.Parallel()
	for _, header := range []bool{false, true} {
		name := "before-header"
		if header {
			name = "after-header"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := &Handler{Backend: fixed(deadlineApp(t, header)), H2C: true,
				afterFunc: func(_ time.Duration, f func()) *time.Timer { return time.AfterFunc(time.Hour, f) }}
			front, c := newH2CFront(t, h)
			req, _ := http.NewRequest(http.MethodPost, front.URL+"/svc/Sleep", strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Grpc-Timeout", deadlineAppTimeout)
			res, _ := get(t, c, req)
			status := res.Header.Get("Grpc-Status")
			if status == "" {
				status = res.Trailer.Get("Grpc-Status")
			}
			if res.StatusCode != 200 || status != "4" {
				t.Errorf("%d, grpc-status %q (%q); want 200 and 4 (DEADLINE_EXCEEDED)", res.StatusCode, status,
					res.Header.Get("Grpc-Message")+res.Trailer.Get("Grpc-Message"))
			}
		})
	}
}

// deadlineAppTimeout is the grpc-timeout deadlineApp's clients send.
const deadlineAppTimeout = "50m"

// deadlineApp accepts one HTTP/2 connection and holds each stream to the
// grpc-timeout deadlineAppTimeout from the moment its HEADERS arrive, as
// grpc-go's server does: it answers nothing (or, with header, only a
// response header) and resets the stream with CANCEL when it expires.
func deadlineApp(t *testing.T, header bool) string {
	d, _ := grpcTimeout(deadlineAppTimeout)
	return oneConnApp(t, func(c *net.TCPConn) {
		fr := http2.NewFramer(c, c)
		var mu sync.Mutex // protects writes on fr
		var timers sync.WaitGroup
		defer timers.Wait()
		mu.Lock()
		_ = fr.WriteSettings()
		mu.Unlock()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					mu.Lock()
					_ = fr.WriteSettingsAck()
					mu.Unlock()
				}
			case *http2.HeadersFrame:
				id := f.StreamID
				if header {
					var hb bytes.Buffer
					enc := hpack.NewEncoder(&hb)
					_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
					_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
					mu.Lock()
					_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
					mu.Unlock()
				}
				expiry := time.NewTimer(d)
				timers.Go(func() {
					<-expiry.C
					mu.Lock()
					_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
					mu.Unlock()
				})
			}
		}
	})
}

// TestH2CClientCancel checks that a client resetting its stream cancels
// the app's stream.
func TestH2CClientCancel(t *testing.T) {
	t.Parallel()
	started, cancelled := make(chan struct{}), make(chan struct{})
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
		close(cancelled)
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true}
	front, c := newH2CFront(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/watch", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel() // the client resets its stream
	_ = res.Body.Close()
	<-cancelled
}

// vanishingApp accepts one HTTP/2 connection and closes it once the first
// stream's first DATA frame arrived, before any answer: an app killed
// while it held the stream.
func vanishingApp(t *testing.T) string {
	return framesApp(t, func(_ *net.TCPConn, _ *http2.Framer, f http2.Frame) bool {
		_, ok := f.(*http2.DataFrame)
		return ok
	})
}

// TestH2CAppGoneWhileClientWaits checks that a streaming request whose
// app connection fails before the answer gets 502.3 while its client,
// as a bidirectional gRPC call does, still holds the request open waiting
// for that answer: the forwarder must not wait for more of the client's
// body first.
func TestH2CAppGoneWhileClientWaits(t *testing.T) {
	t.Parallel()
	h := &Handler{Backend: fixed(vanishingApp(t)), H2C: true}
	front, c := newH2CFront(t, h)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front.URL+"/bidi", pr)
	go func() { _, _ = io.WriteString(pw, "ping\n") }() // and no more until an answer
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("no answer while the request stays open: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", res.StatusCode)
	}
}

// silentApp accepts one connection and reads the client's preface and
// frames up to the first stream's HEADERS, sending nothing, not even its
// SETTINGS (for which the client's DATA waits); then it resets the
// connection: a process killed as it accepted a connection, before it
// served anything on it.
func silentApp(t *testing.T) string {
	return oneConnApp(t, func(c *net.TCPConn) {
		_ = c.SetLinger(0) // Close sends RST
		fr := http2.NewFramer(io.Discard, c)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := f.(*http2.HeadersFrame); ok {
				return
			}
		}
	})
}

// TestH2CUnheardRetried checks that a streaming request whose app
// connection failed before the app sent anything on it is sent again to a
// process acquired anew, and that its body arrives there whole: the part
// the first attempt sent, and the part the client sends only once it got
// an answer (as a bidirectional gRPC call does).
func TestH2CUnheardRetried(t *testing.T) {
	t.Parallel()
	bodies := make(chan string, 1)
	good := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		first, _ := br.ReadString('\n')
		_, _ = io.WriteString(w, "pong\n")
		w.(http.Flusher).Flush()
		rest, _ := io.ReadAll(br)
		bodies <- first + string(rest)
	})
	bad := silentApp(t)
	b := &fakeBackend{}
	b.acquire = func(n int) (*upstream.Lease, error) {
		if n == 1 {
			return b.lease(bad, 1, nil), nil
		}
		return b.lease(good.Listener.Addr().String(), 2, nil), nil
	}
	h := &Handler{Backend: b, H2C: true}
	front, c := newH2CFront(t, h)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front.URL+"/bidi", pr)
	go func() { _, _ = io.WriteString(pw, "ping\n") }() // and no more until an answer
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d, want the second process's answer", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); line != "pong\n" {
		t.Fatalf("answer %q, %v", line, err)
	}
	if _, err := io.WriteString(pw, "more\n"); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	if got := <-bodies; got != "ping\nmore\n" {
		t.Errorf("second process got body %q, want %q", got, "ping\nmore\n")
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("acquired %d times, want 2", n)
	}
	b.waitReleased(t, 2)
}

// TestH2CWritesGathered checks that the connections to an app gather
// their writes (batchconn): the frames of a call are written one by one.
func TestH2CWritesGathered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := dialH2(t.Context(), ln.Addr().String(), time.Second, defaultH2Windows)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cc.close(); <-cc.readDone }()
	if _, ok := cc.nc.(*batchconn.Conn); !ok {
		t.Errorf("the connection writes through a %T, want a *batchconn.Conn", cc.nc)
	}
}
