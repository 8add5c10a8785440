package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// newH2CServerWith starts an h2c app whose HTTP/2 limits (windows,
// concurrent streams) are cfg.
func newH2CServerWith(t *testing.T, cfg *http.HTTP2Config, app http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewUnstartedServer(app)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Config.HTTP2 = cfg
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// openStream opens a stream for req on a connection from p.
func openStream(t *testing.T, ctx context.Context, p *h2Pool, addr string, req *h2Request) *h2Stream {
	t.Helper()
	cc, err := p.get(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cc.open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openGet opens a stream for a GET of path on a connection from p.
func openGet(t *testing.T, ctx context.Context, p *h2Pool, addr, path string) *h2Stream {
	t.Helper()
	return openStream(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: path})
}

// openTest opens a stream for req on a connection from p and waits for
// the response header.
func openTest(t *testing.T, ctx context.Context, p *h2Pool, addr string, req *h2Request) *h2Stream {
	t.Helper()
	st := openStream(t, ctx, p, addr, req)
	if err := st.awaitHeader(ctx); err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st
}

// TestH2ClientFlowControl checks flow control both ways with small
// windows: a request body many times the app's stream window reaches it
// whole (the client waits for the app's WINDOW_UPDATEs), and a response
// many times the client's windows reaches the client whole (the client
// gives the room back as it reads).
func TestH2ClientFlowControl(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	addr := newH2CServerWith(t, &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 10, MaxReceiveBufferPerConnection: 32 << 10},
		func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Got", strconv.FormatInt(n, 10))
			_, _ = w.Write(bytes.Repeat([]byte("y"), size))
		})
	p := newH2Pool(0)
	p.win = h2Windows{stream: 4 << 10, conn: 8 << 10}
	defer p.closeIdle()
	// Bounds a transfer stuck for want of a WINDOW_UPDATE.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	body := io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("x"), size)))
	st := openTest(t, ctx, p, addr, &h2Request{method: http.MethodPost, authority: "app", path: "/",
		body: body, contentLength: size})
	defer st.Close()
	if got := st.Header().Get("X-Got"); got != strconv.Itoa(size) {
		t.Errorf("the app got %s bytes of the request, want %d", got, size)
	}
	n, err := io.Copy(io.Discard, st)
	if err != nil || n != size {
		t.Errorf("read %d bytes of the response, %v; want %d", n, err, size)
	}
}

// TestH2ClientMaxConcurrentStreams checks that a connection whose app
// allows one stream at a time is not given a second: the pool opens
// another connection.
func TestH2ClientMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	addr := newH2CServerWith(t, &http.HTTP2Config{MaxConcurrentStreams: 1}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
	})
	p := newH2Pool(0)
	defer p.closeIdle()
	ctx := t.Context()
	st1 := openTest(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: "/1"})
	st2 := openTest(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: "/2"})
	close(release)
	for _, st := range []*h2Stream{st1, st2} {
		if _, err := io.Copy(io.Discard, st); err != nil {
			t.Error(err)
		}
	}
	if st1.cc == st2.cc {
		t.Error("two streams on one connection whose app allows one")
	}
	st1.Close()
	st2.Close()
}

// TestH2ClientTrailers checks request and response trailers.
func TestH2ClientTrailers(t *testing.T) {
	t.Parallel()
	addr := newH2CServerWith(t, nil, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Echo")
		_, _ = w.Write(b)
		w.Header().Set("X-Echo", r.Trailer.Get("X-Sum"))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	p := newH2Pool(0)
	defer p.closeIdle()
	tr := http.Header{"X-Sum": {"42"}}
	st := openTest(t, t.Context(), p, addr, &h2Request{method: http.MethodPost, authority: "app", path: "/",
		body: io.NopCloser(strings.NewReader("body")), contentLength: -1, trailer: tr})
	defer st.Close()
	b, err := io.ReadAll(st)
	if err != nil || string(b) != "body" {
		t.Fatalf("read %q, %v", b, err)
	}
	if got := st.Trailer(); got.Get("X-Echo") != "42" || got.Get("Grpc-Status") != "0" {
		t.Errorf("response trailers %v; want X-Echo 42 (the request trailer) and Grpc-Status 0", got)
	}
}

// fakeApp is an app driven frame by frame: it sends SETTINGS (with
// settings) and hands each frame it reads to serve, until serve returns
// false.
func fakeApp(t *testing.T, settings []http2.Setting, serve func(fr *http2.Framer, f http2.Frame) bool) string {
	return oneConnApp(t, func(c *net.TCPConn) {
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		_ = fr.WriteSettings(settings...)
		for {
			f, err := fr.ReadFrame()
			if err != nil || !serve(fr, f) {
				return
			}
		}
	})
}

// requestApp is a fakeApp that hands each request's header section to
// serve.
func requestApp(t *testing.T, serve func(fr *http2.Framer, hf *http2.MetaHeadersFrame)) string {
	return fakeApp(t, nil, func(fr *http2.Framer, f http2.Frame) bool {
		if hf, ok := f.(*http2.MetaHeadersFrame); ok {
			serve(fr, hf)
		}
		return true
	})
}

// writeStatus answers stream id with a header section of status 200.
func writeStatus(fr *http2.Framer, id uint32, end bool) {
	var b bytes.Buffer
	_ = hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndHeaders: true, EndStream: end})
}

// TestH2ClientNotProcessed checks that the streams an app refuses
// (REFUSED_STREAM) or leaves above its GOAWAY's last stream id fail as not
// processed, while a stream below it is still answered.
func TestH2ClientNotProcessed(t *testing.T) {
	t.Parallel()
	addr := requestApp(t, func(fr *http2.Framer, hf *http2.MetaHeadersFrame) {
		switch hf.PseudoValue("path") {
		case "/refused":
			_ = fr.WriteRSTStream(hf.StreamID, http2.ErrCodeRefusedStream)
		case "/last":
			// Stream 5: the GOAWAY leaves stream 3 (/first) processed.
			_ = fr.WriteGoAway(3, http2.ErrCodeNo, nil)
			writeStatus(fr, 3, true)
		}
	})
	p := newH2Pool(0)
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	open := func(path string) *h2Stream {
		return openGet(t, ctx, p, addr, path)
	}
	var np *h2NotProcessedError
	refused := open("/refused") // stream 1
	if err := refused.awaitHeader(ctx); !errors.As(err, &np) || !notProcessed(err) {
		t.Errorf("REFUSED_STREAM: %v; want not processed", err)
	}
	refused.Close()
	first, last := open("/first"), open("/last") // streams 3 and 5
	if err := last.awaitHeader(ctx); !errors.As(err, &np) || !notProcessed(err) {
		t.Errorf("above the GOAWAY: %v; want not processed", err)
	}
	if err := first.awaitHeader(ctx); err != nil || first.Status() != 200 {
		t.Errorf("below the GOAWAY: %d, %v; want its answer", first.Status(), err)
	}
	last.Close()
	first.Close()
}

// TestH2ClientCancel checks that a stream whose context ends is reset
// with CANCEL, and that the app's PING is answered.
func TestH2ClientCancel(t *testing.T) {
	t.Parallel()
	reset := make(chan http2.ErrCode, 1)
	pong := make(chan struct{}, 1)
	var stream uint32
	addr := fakeApp(t, nil, func(fr *http2.Framer, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			stream = f.StreamID
			_ = fr.WritePing(false, [8]byte{1})
		case *http2.PingFrame:
			// The answer waits for the PING's acknowledgment.
			if f.IsAck() && f.Data == [8]byte{1} {
				pong <- struct{}{}
				writeStatus(fr, stream, false)
			}
		case *http2.RSTStreamFrame:
			reset <- f.ErrCode
			return false
		}
		return true
	})
	p := newH2Pool(0)
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	st := openTest(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: "/watch"})
	defer st.Close()
	<-pong
	cancel()
	wait, stop := context.WithTimeout(t.Context(), 20*time.Second)
	defer stop()
	awaitCancel(t, wait, reset)
	if _, err := io.ReadAll(st); err == nil {
		t.Error("the cancelled stream's body ended cleanly")
	}
}

// awaitCancel checks that the app saw its stream reset with CANCEL (the
// code on reset) before ctx ends.
func awaitCancel(t *testing.T, ctx context.Context, reset <-chan http2.ErrCode) {
	t.Helper()
	select {
	case code := <-reset:
		if code != http2.ErrCodeCancel {
			t.Errorf("the app's stream was reset with %v, want CANCEL", code)
		}
	case <-ctx.Done():
		t.Error("the app's stream was not reset")
	}
}

// TestH2ClientAwaitsSettings checks that no DATA is sent before the app's
// first SETTINGS, which may make the stream window smaller than HTTP/2's
// initial one, and that DATA then stays within it.
func TestH2ClientAwaitsSettings(t *testing.T) {
	t.Parallel()
	const window = 10
	over := make(chan int, 1)
	got := 0
	// The app sends its SETTINGS only once it has the request's HEADERS,
	// and more room only once the window is used up.
	app := oneConnApp(t, func(c *net.TCPConn) {
		fr := http2.NewFramer(c, c)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
			case *http2.DataFrame:
				if got < window && got+len(f.Data()) > window {
					over <- got + len(f.Data())
				}
				got += len(f.Data())
				if got == window {
					_ = fr.WriteWindowUpdate(f.StreamID, 1000)
				}
				if f.StreamEnded() {
					writeStatus(fr, f.StreamID, true)
				}
			}
		}
	})
	p := newH2Pool(0)
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	st := openTest(t, ctx, p, app, &h2Request{method: http.MethodPost, authority: "app", path: "/",
		body: io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), contentLength: 100})
	st.Close()
	select {
	case n := <-over:
		t.Errorf("%d bytes sent before the app gave room past its window of %d", n, window)
	default:
	}
}

// TestH2ClientBounded checks that a misbehaving app gets an error, not
// unbounded memory: a response header over maxResponseHeader fails its
// stream, and DATA beyond the stream's window fails it too.
func TestH2ClientBounded(t *testing.T) {
	t.Parallel()
	addr := requestApp(t, func(fr *http2.Framer, hf *http2.MetaHeadersFrame) {
		switch hf.PseudoValue("path") {
		case "/huge-header":
			var b bytes.Buffer
			enc := hpack.NewEncoder(&b)
			_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			_ = enc.WriteField(hpack.HeaderField{Name: "x-huge", Value: strings.Repeat("h", maxResponseHeader)})
			block := b.Bytes()
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: hf.StreamID, BlockFragment: block[:16384]})
			for block = block[16384:]; len(block) > 0; {
				n := min(len(block), 16384)
				_ = fr.WriteContinuation(hf.StreamID, n == len(block), block[:n])
				block = block[n:]
			}
		case "/flood":
			writeStatus(fr, hf.StreamID, false)
			chunk := make([]byte, 16384)
			for range 5 { // 80 KiB against a window of 16 KiB
				_ = fr.WriteData(hf.StreamID, false, chunk)
			}
		}
	})
	p := newH2Pool(0)
	p.win = h2Windows{stream: 16 << 10, conn: 1 << 20}
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	open := func(path string) *h2Stream {
		return openGet(t, ctx, p, addr, path)
	}
	st := open("/huge-header")
	if err := st.awaitHeader(ctx); err == nil || !strings.Contains(err.Error(), "response header over") {
		t.Errorf("a header over %d bytes: %v; want the stream failed", maxResponseHeader, err)
	}
	st.Close()
	st = open("/flood")
	if err := st.awaitHeader(ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing is read, so no WINDOW_UPDATE gives the app more room.
	st.cc.mu.Lock()
	for st.err == nil {
		st.cond.Wait() // ctx ending fails the stream too
	}
	err := st.err
	st.cc.mu.Unlock()
	if !strings.Contains(err.Error(), "FLOW_CONTROL_ERROR") {
		t.Errorf("DATA beyond the window: %v; want the stream failed", err)
	}
	st.Close()
}
