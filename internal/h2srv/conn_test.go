package h2srv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/h2conn"
)

// testConfig is the configuration the tests serve with, as the front
// door's.
func testConfig() Config {
	return Config{
		MaxConcurrentStreams: 100, MaxReadFrameSize: 16 << 10,
		StreamWindow: 256 << 10, ConnWindow: 1 << 20, MaxHeaderListSize: 16 << 10,
	}
}

// peer is a raw HTTP/2 client on a real TCP connection to a Conn served
// by h.
type peer struct {
	t    *testing.T
	nc   net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	done chan struct{} // closed when the server's Serve returned
}

// serve starts a Conn with cfg and h on a loopback connection and
// returns the client side, past the preface and the SETTINGS exchange.
func serve(t *testing.T, cfg Config, h Handler) *peer {
	t.Helper()
	return serveHooked(t, cfg, h, nil)
}

// serveHooked is serve, and gives the server's Conn to hook.
func serveHooked(t *testing.T, cfg Config, h Handler, hook func(*Conn)) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := &peer{t: t, done: make(chan struct{})}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	p.nc, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	cfg.Socket = socket(t, sc)
	hc := NewConn(sc, cfg, h)
	if hook != nil {
		hook(hc)
	}
	go func() {
		defer close(p.done)
		hc.Serve()
	}()
	t.Cleanup(func() {
		_ = p.nc.Close()
		<-p.done
	})
	_ = p.nc.SetDeadline(time.Now().Add(30 * time.Second))
	p.fr = http2.NewFramer(p.nc, p.nc)
	p.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	p.enc = hpack.NewEncoder(&p.hbuf)
	if _, err := io.WriteString(p.nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := p.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return p
}

// socket returns the socket of c, a TCP connection, as the front door
// gives a cleartext connection's.
func socket(tb testing.TB, c net.Conn) syscall.RawConn {
	tb.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// headers sends a request's HEADERS on stream id: the pseudo-header
// fields of a GET of / unless fields name them, then fields.
func (p *peer) headers(id uint32, end bool, fields ...string) {
	p.t.Helper()
	p.hbuf.Reset()
	set := map[string]bool{}
	for i := 0; i < len(fields); i += 2 {
		set[fields[i]] = true
	}
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		if !set[f[0]] {
			_ = p.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
	}
	for i := 0; i < len(fields); i += 2 {
		if fields[i+1] == "-" {
			continue // a pseudo-header field left out
		}
		_ = p.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.hbuf.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		p.t.Fatal(err)
	}
}

// trailers sends trailer fields on stream id, ending it.
func (p *peer) trailers(id uint32, fields ...string) {
	p.t.Helper()
	p.hbuf.Reset()
	for i := 0; i < len(fields); i += 2 {
		_ = p.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next frame other than SETTINGS, its ack, PING acks and
// WINDOW_UPDATE; nil when the connection ended.
func (p *peer) read() http2.Frame {
	p.t.Helper()
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			p.t.Logf("client read: %v", err)
			return nil
		}
		switch f := f.(type) {
		case *http2.SettingsFrame, *http2.WindowUpdateFrame:
			continue
		case *http2.PingFrame:
			if f.IsAck() {
				continue
			}
		}
		return f
	}
}

// untilPingAck sends a PING and passes each frame the server sends to
// each, up to the PING's ack: the server has handled all that came
// before the PING by then.
func (p *peer) untilPingAck(each func(http2.Frame)) {
	p.t.Helper()
	data := [8]byte{'a', 'f', 't', 'e', 'r'}
	if err := p.fr.WritePing(false, data); err != nil {
		p.t.Fatal(err)
	}
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			p.t.Fatal(err)
		}
		if pf, ok := f.(*http2.PingFrame); ok && pf.IsAck() && pf.Data == data {
			return
		}
		each(f)
	}
}

// expectRST reads frames until a RST_STREAM on stream id and checks its
// code.
func (p *peer) expectRST(id uint32, code http2.ErrCode) {
	p.t.Helper()
	for {
		f := p.read()
		if f == nil {
			p.t.Fatalf("connection ended before a RST_STREAM on stream %d", id)
		}
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == id {
			if r.ErrCode != code {
				p.t.Fatalf("stream %d reset with %v, want %v", id, r.ErrCode, code)
			}
			return
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			p.t.Fatalf("GOAWAY %v, want a RST_STREAM %v on stream %d", g.ErrCode, code, id)
		}
	}
}

// expectGoAway reads frames until a GOAWAY and checks its code.
func (p *peer) expectGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	p.t.Helper()
	for {
		f := p.read()
		if f == nil {
			p.t.Fatalf("connection ended without a GOAWAY %v", code)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != code {
				p.t.Fatalf("GOAWAY %v, want %v", g.ErrCode, code)
			}
			return g
		}
	}
}

// response reads stream id's response: status, fields, body and trailers.
type response struct {
	status  string
	header  map[string]string
	body    []byte
	trailer map[string]string
	rst     http2.ErrCode
}

func (p *peer) response(id uint32) *response {
	p.t.Helper()
	r := &response{header: map[string]string{}, rst: ^http2.ErrCode(0)}
	for {
		f := p.read()
		if f == nil {
			p.t.Fatalf("connection ended during the response on stream %d", id)
		}
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if r.status == "" || strings.HasPrefix(r.status, "1") && f.PseudoValue("status") != "" {
				r.status = f.PseudoValue("status")
				for _, hf := range f.RegularFields() {
					r.header[hf.Name] = hf.Value
				}
			} else {
				r.trailer = map[string]string{}
				for _, hf := range f.RegularFields() {
					r.trailer[hf.Name] = hf.Value
				}
			}
			if f.StreamEnded() {
				return r
			}
		case *http2.DataFrame:
			r.body = append(r.body, f.Data()...)
			if f.StreamEnded() {
				return r
			}
		case *http2.RSTStreamFrame:
			r.rst = f.ErrCode
			return r
		}
	}
}

func hello(st *Stream) {
	st.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(st, "hello")
}

// TestMalformedRequests sends requests RFC 9113 §8 calls malformed: each
// is reset with PROTOCOL_ERROR before any handler sees it, and the
// connection goes on serving.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		fields []string
	}{
		{"connection field", []string{"connection", "close"}},
		{"keep-alive field", []string{"keep-alive", "timeout=5"}},
		{"transfer-encoding field", []string{"transfer-encoding", "chunked"}},
		{"upgrade field", []string{"upgrade", "h2c"}},
		{"te other than trailers", []string{"te", "gzip"}},
		{"no :method", []string{":method", "-"}},
		{"no :path", []string{":path", "-"}},
		{"empty :path", []string{":path", ""}},
		{"no :scheme", []string{":scheme", "-"}},
		{":protocol without CONNECT", []string{":protocol", "websocket"}},
		{"host other than :authority", []string{"host", "example.com"}},
		{"two content-lengths", []string{"content-length", "1", "content-length", "2"}},
		{"content-length not a number", []string{"content-length", "1x"}},
	}
	var served sync.Map
	p := serve(t, testConfig(), func(st *Stream) {
		served.Store(st.ID(), true)
		hello(st)
	})
	id := uint32(1)
	for _, c := range cases {
		p.headers(id, true, c.fields...)
		p.expectRST(id, http2.ErrCodeProtocol)
		if _, ok := served.Load(id); ok {
			t.Errorf("%s: the handler saw the request", c.name)
		}
		id += 2
	}
	p.headers(id, true, "te", "trailers")
	if r := p.response(id); r.status != "200" || string(r.body) != "hello" {
		t.Fatalf("a good request after the malformed ones: %+v", r)
	}
}

// TestContentLengthAgainstData resets a stream whose DATA disagree with
// its content-length, either way.
func TestContentLengthAgainstData(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), func(st *Stream) {
		_, _ = io.Copy(io.Discard, st)
		hello(st)
	})
	p.headers(1, false, ":method", "POST", "content-length", "3")
	_ = p.fr.WriteData(1, true, []byte("abcd"))
	p.expectRST(1, http2.ErrCodeProtocol)
	p.headers(3, false, ":method", "POST", "content-length", "3")
	_ = p.fr.WriteData(3, true, []byte("ab"))
	p.expectRST(3, http2.ErrCodeProtocol)
	p.headers(5, false, ":method", "POST", "content-length", "3")
	_ = p.fr.WriteData(5, true, []byte("abc"))
	if r := p.response(5); r.status != "200" {
		t.Fatalf("a body of its content-length: %+v", r)
	}
}

// TestInitialWindowSizeInOrder sends two SETTINGS_INITIAL_WINDOW_SIZE
// values in one SETTINGS frame: the last one counts, and the response's
// DATA stay within it until the client gives more room.
func TestInitialWindowSizeInOrder(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), hello)
	if err := p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}); err != nil {
		t.Fatal(err)
	}
	p.headers(1, true)
	var got []byte
	for len(got) < 5 {
		f := p.read()
		if f == nil {
			t.Fatal("connection ended")
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			if g, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("GOAWAY %v", g.ErrCode)
			}
			continue
		}
		if len(d.Data()) > 1 {
			t.Fatalf("DATA of %d bytes in a stream window of 1", len(d.Data()))
		}
		got = append(got, d.Data()...)
		if err := p.fr.WriteWindowUpdate(1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "hello" {
		t.Fatalf("body %q", got)
	}
}

// TestClientResetCancels resets a stream whose handler waits: its
// context ends.
func TestClientResetCancels(t *testing.T) {
	t.Parallel()
	cancelled := make(chan error, 1)
	started := make(chan struct{})
	p := serve(t, testConfig(), func(st *Stream) {
		close(started)
		<-st.Context().Done()
		cancelled <- st.Context().Err()
	})
	p.headers(1, true)
	<-started
	if err := p.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("context ended with %v", err)
	}
}

// TestRapidReset opens streams and resets them while their handlers
// still run: beyond MaxConcurrentStreams handlers in flight, new streams
// are refused, and a client that goes on is sent ENHANCE_YOUR_CALM.
func TestRapidReset(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxConcurrentStreams = 4
	release := make(chan struct{})
	defer close(release)
	p := serve(t, cfg, func(st *Stream) { <-release })
	id := uint32(1)
	for range cfg.MaxConcurrentStreams {
		p.headers(id, true)
		_ = p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		id += 2
	}
	p.headers(id, true)
	p.expectRST(id, http2.ErrCodeRefusedStream)
	for range calmFactor * cfg.MaxConcurrentStreams {
		id += 2
		p.headers(id, true)
		_ = p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	p.expectGoAway(http2.ErrCodeEnhanceYourCalm)
}

// TestShutdownFinishesStreams shuts a connection down while a stream is
// served: a GOAWAY tells the client first, the stream's response is
// whole, a stream opened after the final GOAWAY is refused, and the
// connection closes after the last stream.
func TestShutdownFinishesStreams(t *testing.T) {
	t.Parallel()
	started := make(chan *Stream, 1)
	finish := make(chan struct{})
	var hc *Conn
	cfg := testConfig()
	p := serveConn(t, cfg, func(st *Stream) {
		if st.ID() == 1 {
			started <- st
			<-finish
		}
		hello(st)
	}, &hc)
	p.headers(1, true)
	<-started
	go hc.Shutdown()
	g := p.expectGoAway(http2.ErrCodeNo)
	if g.LastStreamID != h2conn.MaxStreamID {
		t.Fatalf("first GOAWAY names stream %d, want 2^31-1", g.LastStreamID)
	}
	// The shutdown's PING: answered, the final GOAWAY follows.
	for {
		f := p.read()
		if f == nil {
			t.Fatal("connection ended before the shutdown's PING")
		}
		if ping, ok := f.(*http2.PingFrame); ok {
			_ = p.fr.WritePing(true, ping.Data)
			break
		}
	}
	g = p.expectGoAway(http2.ErrCodeNo)
	if g.LastStreamID != 1 {
		t.Fatalf("final GOAWAY names stream %d, want 1", g.LastStreamID)
	}
	p.headers(3, true)
	p.expectRST(3, http2.ErrCodeRefusedStream)
	close(finish)
	if r := p.response(1); r.status != "200" || string(r.body) != "hello" {
		t.Fatalf("stream 1: %+v", r)
	}
	if f := p.read(); f != nil {
		t.Fatalf("after the last stream: %T, want the connection closed", f)
	}
}

// serveConn is serve, which also hands back the server's Conn.
func serveConn(t *testing.T, cfg Config, h Handler, hc **Conn) *peer {
	t.Helper()
	return serveHooked(t, cfg, h, func(c *Conn) { *hc = c })
}

// TestTrailers sends a request with declared trailers and answers with
// trailers both ways handlers set them: declared in "Trailer", and with
// http.TrailerPrefix.
func TestTrailers(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), func(st *Stream) {
		if st.Trailer == nil {
			t.Error("declared trailer not in Trailer")
			return
		}
		if _, err := io.Copy(io.Discard, st); err != nil {
			t.Error(err)
		}
		st.Header().Set("Trailer", "Grpc-Status")
		st.WriteHeader(200)
		_, _ = io.WriteString(st, "body")
		st.Header().Set("Grpc-Status", "0")
		st.Header().Set(http.TrailerPrefix+"Echo", st.Trailer.Get("X-Checksum"))
	})
	p.headers(1, false, ":method", "POST", "trailer", "X-Checksum")
	_ = p.fr.WriteData(1, false, []byte("abc"))
	p.trailers(1, "x-checksum", "42")
	r := p.response(1)
	if r.status != "200" || string(r.body) != "body" {
		t.Fatalf("response %+v", r)
	}
	if r.trailer["grpc-status"] != "0" || r.trailer["echo"] != "42" {
		t.Fatalf("trailers %v", r.trailer)
	}
}

// TestResponseRules checks what a response never carries: a body for
// HEAD, 204 and 304, and connection-specific fields.
func TestResponseRules(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), func(st *Stream) {
		st.Header().Set("Connection", "close")
		st.Header().Set("Keep-Alive", "timeout=5")
		st.Header().Set("Transfer-Encoding", "chunked")
		st.Header().Set("Upgrade", "foo")
		switch st.Path {
		case "/204":
			st.WriteHeader(204)
		case "/304":
			st.WriteHeader(304)
		}
		_, _ = io.WriteString(st, "body")
	})
	for i, c := range []struct{ method, path, status string }{
		{"HEAD", "/", "200"}, {"GET", "/204", "204"}, {"GET", "/304", "304"}, {"GET", "/", "200"},
	} {
		id := uint32(2*i + 1)
		p.headers(id, true, ":method", c.method, ":path", c.path)
		r := p.response(id)
		if r.status != c.status {
			t.Errorf("%s %s: status %s", c.method, c.path, r.status)
		}
		if (len(r.body) > 0) != (c.method == "GET" && c.path == "/") {
			t.Errorf("%s %s: body %q", c.method, c.path, r.body)
		}
		for _, k := range []string{"connection", "keep-alive", "transfer-encoding", "upgrade"} {
			if _, ok := r.header[k]; ok {
				t.Errorf("%s %s: %s sent", c.method, c.path, k)
			}
		}
	}
}

// TestHeaderListTooLarge answers a request over MaxHeaderListSize with
// 431, without a handler.
func TestHeaderListTooLarge(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxHeaderListSize = 1 << 10
	p := serve(t, cfg, func(st *Stream) { t.Error("handler ran") })
	big := strings.Repeat("a", 400)
	p.headers(1, true, "x-big1", big, "x-big2", big, "x-big3", big)
	if r := p.response(1); r.status != "431" {
		t.Fatalf("status %q, want 431", r.status)
	}
}

// TestClosedStreams: HEADERS on a stream that ended is a connection
// error STREAM_CLOSED; on one below the last opened that never was, a
// PROTOCOL_ERROR; DATA after the client reset a stream, STREAM_CLOSED.
func TestClosedStreams(t *testing.T) {
	t.Parallel()
	t.Run("ended", func(t *testing.T) {
		t.Parallel()
		p := serve(t, testConfig(), hello)
		p.headers(1, true)
		p.response(1)
		p.headers(1, true)
		p.expectGoAway(http2.ErrCodeStreamClosed)
	})
	t.Run("skipped", func(t *testing.T) {
		t.Parallel()
		p := serve(t, testConfig(), hello)
		p.headers(5, true)
		p.response(5)
		p.headers(3, true)
		p.expectGoAway(http2.ErrCodeProtocol)
	})
	t.Run("data after reset", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		defer close(release)
		p := serve(t, testConfig(), func(st *Stream) { <-release })
		p.headers(1, false, ":method", "POST")
		_ = p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		_ = p.fr.WriteData(1, false, []byte("x"))
		p.expectRST(1, http2.ErrCodeStreamClosed)
	})
}

// TestIdleTimeout closes a connection without streams once IdleTimeout
// passed, with a GOAWAY first.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	p := serve(t, cfg, hello)
	p.headers(1, true)
	p.response(1)
	p.expectGoAway(http2.ErrCodeNo)
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			break // closed
		}
		if ping, ok := f.(*http2.PingFrame); ok && !ping.IsAck() {
			_ = p.fr.WritePing(true, ping.Data)
		}
	}
	<-p.done
}

// TestConnectionCloseShutsDown: a response with "Connection: close" is
// sent without that field, and the connection is shut down gracefully
// after it.
func TestConnectionCloseShutsDown(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), func(st *Stream) {
		st.Header().Set("Connection", "close")
		st.WriteHeader(400)
	})
	p.headers(1, true)
	if r := p.response(1); r.status != "400" || r.header["connection"] != "" {
		t.Fatalf("response %+v", r)
	}
	p.expectGoAway(http2.ErrCodeNo)
}

// TestClientGoAwayShutsDown: after the client's GOAWAY the stream in
// flight is served whole, the server answers with its own GOAWAY naming
// the last stream, a stream opened after it is refused, and the
// connection closes once the last stream ended, long before an idle
// timeout would.
func TestClientGoAwayShutsDown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	finish, stop := make(chan struct{}), make(chan struct{})
	p := serve(t, testConfig(), func(st *Stream) {
		if st.ID() == 1 {
			close(started)
			select {
			case <-finish:
			case <-stop: // the test ended
			}
		}
		hello(st)
	})
	t.Cleanup(func() { close(stop) }) // before serve's, which waits for the handlers
	p.headers(1, true)
	<-started
	if err := p.fr.WriteGoAway(0, http2.ErrCodeNo, nil); err != nil {
		t.Fatal(err)
	}
	// The PING after it is answered after the GOAWAY is handled.
	if err := p.fr.WritePing(false, [8]byte{'a', 'f', 't', 'e', 'r'}); err != nil {
		t.Fatal(err)
	}
	var g *http2.GoAwayFrame
	for g == nil {
		f, err := p.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			g = f
		case *http2.PingFrame:
			if f.IsAck() {
				t.Fatal("no GOAWAY answered the client's")
			}
		}
	}
	if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v naming stream %d, want NO_ERROR naming 1", g.ErrCode, g.LastStreamID)
	}
	p.headers(3, true)
	p.expectRST(3, http2.ErrCodeRefusedStream)
	close(finish)
	if r := p.response(1); r.status != "200" || string(r.body) != "hello" {
		t.Fatalf("stream 1: %+v", r)
	}
	if f := p.read(); f != nil {
		t.Fatalf("after the last stream: %T, want the connection closed", f)
	}
}

// TestPriorityDoesNotOpen sends a PRIORITY frame that makes an idle
// stream depend on itself: the stream is reset (PROTOCOL_ERROR, RFC 9113
// §5.3.1) but not opened (§5.1: PRIORITY is allowed on an idle stream),
// so streams with lower ids, and that one, can still be opened.
func TestPriorityDoesNotOpen(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), hello)
	if err := p.fr.WritePriority(5, http2.PriorityParam{StreamDep: 5, Weight: 15}); err != nil {
		t.Fatal(err)
	}
	p.expectRST(5, http2.ErrCodeProtocol)
	for _, id := range []uint32{3, 5} {
		p.headers(id, true)
		if r := p.response(id); r.status != "200" {
			t.Fatalf("stream %d: %+v", id, r)
		}
	}
}

// TestDataFrameSizes sends a response body in DATA frames of the default
// size and, to a client that allows them (SETTINGS_MAX_FRAME_SIZE), in
// larger ones: each frame is no larger than the client allows, and the
// body arrives whole.
func TestDataFrameSizes(t *testing.T) {
	t.Parallel()
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for _, maxFrame := range []uint32{h2conn.DefaultMaxFrameSize, 1 << 20} {
		t.Run(strconv.Itoa(int(maxFrame)), func(t *testing.T) {
			t.Parallel()
			p := serve(t, testConfig(), func(st *Stream) { _, _ = st.Write(body) })
			p.fr.SetMaxReadFrameSize(maxFrame)
			if err := p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrame},
				http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
				t.Fatal(err)
			}
			if err := p.fr.WriteWindowUpdate(0, 1<<20); err != nil {
				t.Fatal(err)
			}
			p.headers(1, true)
			var got []byte
			largest := 0
			for {
				f := p.read()
				if f == nil {
					t.Fatal("connection ended during the response")
				}
				d, ok := f.(*http2.DataFrame)
				if !ok {
					continue
				}
				got = append(got, d.Data()...)
				largest = max(largest, len(d.Data()))
				if d.StreamEnded() {
					break
				}
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes, not the %d of the body", len(got), len(body))
			}
			if largest > int(maxFrame) {
				t.Fatalf("a DATA frame of %d bytes, over the client's %d", largest, maxFrame)
			}
			if maxFrame > h2conn.DefaultMaxFrameSize && largest <= h2conn.DefaultMaxFrameSize {
				t.Fatalf("the largest DATA frame was %d bytes, though the client allowed %d", largest, maxFrame)
			}
		})
	}
}

// TestPaddedData: the data of padded DATA frames reaches the handler
// without the padding, and the padding counts against the windows only; a
// padded DATA frame whose pad length is not below its payload's length,
// or that has no room for the pad length at all, is a connection error
// PROTOCOL_ERROR (RFC 9113 §6.1).
func TestPaddedData(t *testing.T) {
	t.Parallel()
	echo := func(st *Stream) {
		b, err := io.ReadAll(st)
		if err != nil {
			return
		}
		_, _ = st.Write(b)
	}
	t.Run("served", func(t *testing.T) {
		t.Parallel()
		p := serve(t, testConfig(), echo)
		p.headers(1, false, ":method", "POST")
		if err := p.fr.WriteDataPadded(1, false, []byte("abc"), make([]byte, 200)); err != nil {
			t.Fatal(err)
		}
		if err := p.fr.WriteDataPadded(1, false, []byte("de"), nil); err != nil {
			t.Fatal(err)
		}
		// A padded frame with no data: the pad length byte and padding.
		if err := p.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded|http2.FlagDataEndStream, 1, []byte{3, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		if r := p.response(1); r.status != "200" || string(r.body) != "abcde" {
			t.Fatalf("response %+v, want 200 with abcde", r)
		}
	})
	for name, payload := range map[string][]byte{
		"pad length over the payload": {4, 'a', 0, 0},
		"pad length equal to payload": {3, 0, 0},
		"no room for the pad length":  {},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := serve(t, testConfig(), echo)
			p.headers(1, false, ":method", "POST")
			if err := p.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, 1, payload); err != nil {
				t.Fatal(err)
			}
			p.expectGoAway(http2.ErrCodeProtocol)
		})
	}
}
