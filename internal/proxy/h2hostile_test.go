package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/h2conn"
)

// The tests in this file drive a hostile or broken app frame by frame
// (fakeApp, oneConnApp) against the h2c client. The package's TestMain
// runs goleak: every goroutine they start (read loops, body goroutines,
// idle timers' callbacks) must have ended by the end of the package's
// tests.

// TestH2ClientStalledApp checks a connection whose write lock is held by
// a writer stuck in its write, as one is when the app stops reading (a
// DATA write, or the read loop's acknowledgment of the PINGs an app
// floods while reading nothing: what the client holds of them is bounded
// by the connection's write buffer, after which the writer waits). A new
// stream that needs the lock must not wait for its own context (a client
// hung for as long as requestTimeout, on every request sent to that
// connection): after the write-stall bound the connection is closed, the
// stream fails, and the read loop ends. The test holds the lock itself,
// in place of the stuck writer.
func TestH2ClientStalledApp(t *testing.T) {
	t.Parallel()
	acked := make(chan struct{})
	addr := fakeApp(t, nil, func(fr *http2.Framer, f http2.Frame) bool {
		if f, ok := f.(*http2.SettingsFrame); ok && f.IsAck() {
			close(acked)
		}
		return true
	})
	p := newH2Pool(0)
	p.win = h2Windows{stream: h2StreamWindow, conn: h2ConnWindow, stall: 100 * time.Millisecond}
	defer p.closeIdle()
	// Far longer than the stall bound: the stream must fail before it.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cc, err := p.get(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	// Once the app's SETTINGS are acknowledged the read loop has nothing
	// to write: only the new stream waits for the lock.
	select {
	case <-acked:
	case <-ctx.Done():
		t.Fatal("the app's SETTINGS were not acknowledged")
	}
	cc.wsem <- struct{}{} // the stuck writer
	defer cc.unlockWrite()
	_, err = cc.open(ctx, &h2Request{method: http.MethodGet, authority: "app", path: "/"})
	if ctx.Err() != nil {
		t.Fatalf("opening a stream on a stalled connection waited for its context: %v", err)
	}
	if !errors.Is(err, errH2WriteStalled) {
		t.Errorf("opening a stream on a stalled connection: %v; want %v", err, errH2WriteStalled)
	}
	if err := cc.failure(); !errors.Is(err, errH2WriteStalled) {
		t.Errorf("the stalled connection: %v; want it failed with %v", err, errH2WriteStalled)
	}
	select {
	case <-cc.readDone:
	case <-ctx.Done():
		t.Fatal("the read loop of the stalled connection did not end")
	}
}

// headerBlock encodes fields (name, value pairs) as one header block.
func headerBlock(fields ...string) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return b.Bytes()
}

// writeHeader answers stream id with the header section of fields.
func writeHeader(fr *http2.Framer, id uint32, end bool, fields ...string) {
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock(fields...),
		EndHeaders: true, EndStream: end})
}

// TestH2ClientHostileFrames checks, for each way an app breaks RFC 9113,
// that the request gets an error rather than a hang or a panic, and that
// the connection fails when the break is a connection error and stays up
// when it is a stream error.
func TestH2ClientHostileFrames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// settings are the app's first SETTINGS; win the client's windows.
		settings []http2.Setting
		win      h2Windows
		// answer writes the app's frames for the request on stream id.
		answer func(fr *http2.Framer, id uint32)
		// stream is part of the request's error; conn part of the
		// connection's failure, "" when the connection must stay up.
		stream, conn string
		// goAway is the code of the GOAWAY the app must get (§5.4.1),
		// "" when it is not checked.
		goAway string
	}{{
		// §6.9.1: a connection window past 2^31-1 is a connection error.
		name:   "WINDOW_UPDATE overflows the connection window",
		answer: func(fr *http2.Framer, id uint32) { _ = fr.WriteWindowUpdate(0, h2conn.MaxWindow) },
		stream: "overflows the connection window", conn: "overflows the connection window",
		goAway: "FLOW_CONTROL_ERROR",
	}, {
		// §6.9.1: a stream window past 2^31-1 is a stream error.
		name:   "WINDOW_UPDATE overflows a stream window",
		answer: func(fr *http2.Framer, id uint32) { _ = fr.WriteWindowUpdate(id, h2conn.MaxWindow) },
		stream: "overflows the stream window",
	}, {
		// §6.9.2: a change of SETTINGS_INITIAL_WINDOW_SIZE that takes an
		// open stream's window past 2^31-1 is a connection error.
		name: "SETTINGS_INITIAL_WINDOW_SIZE overflows an open stream's window",
		answer: func(fr *http2.Framer, id uint32) {
			_ = fr.WriteWindowUpdate(id, h2conn.MaxWindow-65535)
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
		},
		stream: "overflows a stream window", conn: "overflows a stream window",
	}, {
		// §6.9.1: DATA beyond the connection's receive window is a
		// connection error.
		name: "DATA beyond the connection window",
		win:  h2Windows{stream: 1 << 20, conn: 32 << 10},
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200")
			chunk := make([]byte, 16384)
			for range 3 {
				_ = fr.WriteData(id, false, chunk)
			}
		},
		stream: "connection's flow-control window", conn: "connection's flow-control window",
	}, {
		// §6.10, §10.5.1: CONTINUATION frames carrying a header list far
		// past the client's limit end the connection, not its memory.
		name: "CONTINUATION flood",
		answer: func(fr *http2.Framer, id uint32) {
			fields := []string{":status", "200"}
			for i := range 4 * maxResponseHeader / 100 {
				fields = append(fields, "x-many-"+strconv.Itoa(i), strings.Repeat("h", 100))
			}
			block := headerBlock(fields...)
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:1000]})
			for block = block[1000:]; len(block) > 0; {
				n := min(len(block), 1000)
				if fr.WriteContinuation(id, n == len(block), block[:n]) != nil {
					return
				}
				block = block[n:]
			}
		},
		stream: "PROTOCOL_ERROR", conn: "PROTOCOL_ERROR",
	}, {
		// §5.1: HEADERS on a stream the client never opened.
		name:   "HEADERS on a stream not opened",
		answer: func(fr *http2.Framer, id uint32) { writeHeader(fr, id+2, true, ":status", "200") },
		stream: "not opened", conn: "not opened",
	}, {
		// §5.1, §8.4: an even stream is a server's, which only a push
		// would open; push is disabled.
		name:   "HEADERS on an even stream",
		answer: func(fr *http2.Framer, id uint32) { writeHeader(fr, 2, true, ":status", "200") },
		stream: "not opened", conn: "not opened",
	}, {
		// §6.4: RST_STREAM on an idle stream is a connection error.
		name:   "RST_STREAM on a stream not opened",
		answer: func(fr *http2.Framer, id uint32) { _ = fr.WriteRSTStream(id+2, http2.ErrCodeCancel) },
		stream: "not opened", conn: "not opened", goAway: "PROTOCOL_ERROR",
	}, {
		// §5.1: WINDOW_UPDATE on an idle stream is a connection error.
		name:   "WINDOW_UPDATE on a stream not opened",
		answer: func(fr *http2.Framer, id uint32) { _ = fr.WriteWindowUpdate(id+2, 1) },
		stream: "not opened", conn: "not opened",
	}, {
		// §8.4: PUSH_PROMISE with push disabled is a connection error.
		name: "PUSH_PROMISE",
		answer: func(fr *http2.Framer, id uint32) {
			_ = fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, EndHeaders: true,
				BlockFragment: headerBlock(":method", "GET", ":scheme", "http", ":authority", "app", ":path", "/x")})
		},
		stream: "PUSH_PROMISE", conn: "PUSH_PROMISE",
	}, {
		// §4.2: a frame over SETTINGS_MAX_FRAME_SIZE (the client's is the
		// default, 16384) is a FRAME_SIZE_ERROR of the connection.
		name: "frame over SETTINGS_MAX_FRAME_SIZE",
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200")
			_ = fr.WriteRawFrame(http2.FrameData, 0, id, make([]byte, 16385))
		},
		stream: "frame too large", conn: "frame too large",
	}, {
		// §6.5.2: SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1.
		name:     "SETTINGS_INITIAL_WINDOW_SIZE too large",
		settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 31}},
		stream:   "FLOW_CONTROL_ERROR", conn: "FLOW_CONTROL_ERROR", goAway: "FLOW_CONTROL_ERROR",
	}, {
		// §6.5.2: SETTINGS_MAX_FRAME_SIZE below 16384.
		name:     "SETTINGS_MAX_FRAME_SIZE out of range",
		settings: []http2.Setting{{ID: http2.SettingMaxFrameSize, Val: 100}},
		stream:   "PROTOCOL_ERROR", conn: "PROTOCOL_ERROR",
	}, {
		// §6.5.2: a server may only announce SETTINGS_ENABLE_PUSH 0.
		name:     "SETTINGS_ENABLE_PUSH 1 from the server",
		settings: []http2.Setting{{ID: http2.SettingEnablePush, Val: 1}},
		stream:   "ENABLE_PUSH", conn: "ENABLE_PUSH", goAway: "PROTOCOL_ERROR",
	}, {
		// §6.8: a stream above the last stream id of a GOAWAY was not
		// processed; its error code and debug data say why.
		name: "GOAWAY with an error code and debug data",
		answer: func(fr *http2.Framer, id uint32) {
			_ = fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, []byte("slow down"))
		},
		stream: `ENHANCE_YOUR_CALM: "slow down"`,
	}, {
		// §8.3.2: :status must be a three-digit code.
		name:   "bad :status",
		answer: func(fr *http2.Framer, id uint32) { writeHeader(fr, id, true, ":status", "abc") },
		stream: "response :status",
	}, {
		// §8.3: a pseudo-header field twice makes the response malformed.
		name:   "duplicate :status",
		answer: func(fr *http2.Framer, id uint32) { writeHeader(fr, id, true, ":status", "200", ":status", "204") },
		stream: "duplicate pseudo-header",
	}, {
		// §8.2.2: a connection-specific field makes the response malformed.
		name:   "connection-specific field",
		answer: func(fr *http2.Framer, id uint32) { writeHeader(fr, id, true, ":status", "200", "connection", "close") },
		stream: `connection-specific field "connection"`,
	}, {
		name: "transfer-encoding",
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200", "transfer-encoding", "chunked")
		},
		stream: `connection-specific field "transfer-encoding"`,
	}, {
		name: "connection-specific field in the trailers",
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200")
			writeHeader(fr, id, true, "keep-alive", "1")
		},
		stream: `connection-specific field "keep-alive"`,
	}, {
		// §8.1.1: DATA adding up to less or more than content-length makes
		// the response malformed.
		name: "body shorter than content-length",
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200", "content-length", "10")
			_ = fr.WriteData(id, true, []byte("short"))
		},
		stream: "other than its content-length",
	}, {
		name: "body longer than content-length",
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200", "content-length", "3")
			_ = fr.WriteData(id, false, []byte("longer"))
		},
		stream: "other than its content-length",
	}, {
		name: "body cut short by trailers",
		answer: func(fr *http2.Framer, id uint32) {
			writeHeader(fr, id, false, ":status", "200", "content-length", "10")
			_ = fr.WriteData(id, false, []byte("short"))
			writeHeader(fr, id, true, "grpc-status", "0")
		},
		stream: "shorter than its content-length",
	}, {
		name:   "content-length not a number",
		answer: func(fr *http2.Framer, id uint32) { writeHeader(fr, id, false, ":status", "200", "content-length", "x") },
		stream: "response content-length",
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			away := make(chan http2.ErrCode, 1)
			var pending uint32 // the stream whose answer waits for a PING's ack
			addr := fakeApp(t, c.settings, func(fr *http2.Framer, f http2.Frame) bool {
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					switch {
					case c.answer == nil:
					case c.goAway != "":
						// The client sends its GOAWAY only while the write
						// lock is free, which the stream's opening may
						// still hold when its HEADERS arrived (on a loaded
						// machine). The read loop writes the PING's ack
						// once it is released: the answer follows that.
						pending = f.StreamID
						_ = fr.WritePing(false, [8]byte{})
					default:
						c.answer(fr, f.StreamID)
					}
				case *http2.PingFrame:
					if f.IsAck() && pending != 0 {
						c.answer(fr, pending)
						pending = 0
					}
				case *http2.GoAwayFrame:
					away <- f.ErrCode
					return false
				}
				return true
			})
			p := newH2Pool(0)
			if c.win != (h2Windows{}) {
				p.win = c.win
			}
			defer p.closeIdle()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cc, err := p.get(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			if c.settings != nil {
				// The app's SETTINGS are taken before the stream opens:
				// the GOAWAY that answers bad ones is sent only while no
				// stream is writing its HEADERS.
				select {
				case <-cc.settingsDone:
				case <-ctx.Done():
				}
			}
			st, err := cc.open(ctx, &h2Request{method: http.MethodGet, authority: "app", path: "/"})
			if err == nil {
				defer st.Close()
				if err = st.awaitHeader(ctx); err == nil {
					if c.conn != "" {
						// The body is read once the connection ended:
						// reading gives room back to the windows, which
						// must not decide whether the app's DATA was
						// beyond them.
						select {
						case <-cc.readDone:
						case <-ctx.Done():
						}
					}
					_, err = io.ReadAll(st)
				}
			}
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), c.stream) {
				t.Errorf("the request: %v; want an error with %q", err, c.stream)
			}
			if c.conn == "" {
				if err := cc.failure(); err != nil {
					t.Errorf("the connection failed (%v); want only the stream failed", err)
				}
				return
			}
			select {
			case <-cc.readDone:
			case <-ctx.Done():
				t.Fatal("the connection's read loop did not end")
			}
			if err := cc.failure(); err == nil || !strings.Contains(err.Error(), c.conn) {
				t.Errorf("the connection: %v; want it failed with %q", err, c.conn)
			}
			if c.goAway == "" {
				return
			}
			select {
			case code := <-away:
				if code.String() != c.goAway {
					t.Errorf("the app got GOAWAY %v, want %s", code, c.goAway)
				}
			case <-ctx.Done():
				t.Errorf("the app got no GOAWAY, want %s", c.goAway)
			}
		})
	}
}

// TestH2ClientDataOnClosedStream checks that DATA the app sent on a
// stream the client has reset and closed still gives the connection's
// window back (RFC 9113 §6.9: flow-controlled frames count against the
// connection window whatever their stream's state): an app that keeps to
// its windows is not left without room for the next stream. The app
// sends twice the connection window on the closed stream, waiting for
// room as it goes, then answers a second stream.
func TestH2ClientDataOnClosedStream(t *testing.T) {
	t.Parallel()
	const connWin, closedData, body = 64 << 10, 128 << 10, 16 << 10
	sent := make(chan struct{})
	room := int64(65535) // the app's view of the client's connection window
	pending := 0         // what is left to send on the closed stream
	addr := fakeApp(t, nil, func(fr *http2.Framer, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				room += int64(f.Increment)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				writeHeader(fr, 1, false, ":status", "200")
				return true
			}
			writeHeader(fr, f.StreamID, false, ":status", "200")
			_ = fr.WriteData(f.StreamID, true, make([]byte, body))
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				pending = closedData
			}
		}
		for pending > 0 && room > 0 {
			n := min(pending, 16384, int(room))
			if fr.WriteData(1, false, make([]byte, n)) != nil {
				return false
			}
			pending -= n
			room -= int64(n)
			if pending == 0 {
				close(sent)
			}
		}
		return true
	})
	p := newH2Pool(0)
	p.win = h2Windows{stream: 1 << 20, conn: connWin}
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	st := openTest(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: "/1"})
	st.Close()
	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("the app was not given room to send its DATA on the closed stream")
	}
	st = openTest(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: "/2"})
	defer st.Close()
	if n, err := io.Copy(io.Discard, st); err != nil || n != body {
		t.Errorf("the next stream: %d bytes, %v; want %d", n, err, body)
	}
}

// TestH2CMalformedResponse checks that a malformed response from an h2c
// app (RFC 9113 §8.1.1: a duplicate pseudo-header field, a
// connection-specific field) reaches the client as a 502, the stream
// failed, nothing panicking.
func TestH2CMalformedResponse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, path string }{
		{"duplicate :status", "/dup"},
		{"connection-specific field", "/conn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := requestApp(t, func(fr *http2.Framer, hf *http2.MetaHeadersFrame) {
				switch hf.PseudoValue("path") {
				case "/dup":
					writeHeader(fr, hf.StreamID, true, ":status", "200", ":status", "200")
				case "/conn":
					writeHeader(fr, hf.StreamID, true, ":status", "200", "connection", "close")
				}
			})
			h := &Handler{Backend: fixed(addr), H2C: true}
			front, cl := newH2CFront(t, h)
			req, _ := http.NewRequest(http.MethodGet, front.URL+c.path, nil)
			res, _ := get(t, cl, req)
			if res.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", res.StatusCode)
			}
		})
	}
}

// TestH2CAppNeverAnswers checks that a request to an app that takes the
// stream and never answers ends after requestTimeout with a 502, the
// app's stream reset with CANCEL.
func TestH2CAppNeverAnswers(t *testing.T) {
	t.Parallel()
	reset := make(chan http2.ErrCode, 1)
	addr := fakeApp(t, nil, func(fr *http2.Framer, f http2.Frame) bool {
		if f, ok := f.(*http2.RSTStreamFrame); ok {
			reset <- f.ErrCode
			return false
		}
		return true
	})
	h := &Handler{Backend: fixed(addr), H2C: true, RequestTimeout: 300 * time.Millisecond}
	front, cl := newH2CFront(t, h)
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	res, _ := get(t, cl, req)
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	awaitCancel(t, ctx, reset)
}

// TestH2CTokenNotEchoed checks that an app echoing the pairing token, in
// its response header or in its trailers, does not hand it to the client.
func TestH2CTokenNotEchoed(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get(headerToken)
		got <- token
		w.Header().Set(headerToken, token)
		w.Header().Set("Trailer", headerToken)
		_, _ = io.WriteString(w, "answer")
		w.Header().Set(headerToken, token)
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true}
	front, cl := newH2CFront(t, h)
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	res, body := get(t, cl, req)
	token := <-got
	if token == "" {
		t.Fatal("the app got no pairing token")
	}
	if res.StatusCode != 200 || body != "answer" {
		t.Errorf("%d %q, want 200 and the answer", res.StatusCode, body)
	}
	for _, h := range []http.Header{res.Header, res.Trailer} {
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, token) || strings.EqualFold(k, headerToken) {
					t.Errorf("the client got the pairing token: %s: %s", k, v)
				}
			}
		}
	}
}

// TestH2ClientControlFlood checks an app that floods SETTINGS and PING
// frames while it reads: each is acknowledged (RFC 9113 §6.5.3, §6.7),
// in order, and the connection still serves a request afterwards.
func TestH2ClientControlFlood(t *testing.T) {
	t.Parallel()
	// The acknowledgments (26 bytes a pair) fit in the socket buffers while
	// the app writes the flood without reading.
	const flood = 1000
	acks := make(chan [2]int, 1)
	settingsAcks, pingAcks := 0, 0
	addr := fakeApp(t, nil, func(fr *http2.Framer, f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			for i := range flood {
				_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
				_ = fr.WritePing(false, [8]byte{byte(i)})
			}
			writeHeader(fr, f.StreamID, true, ":status", "200")
		case *http2.SettingsFrame:
			if f.IsAck() {
				settingsAcks++
			}
		case *http2.PingFrame:
			if f.IsAck() {
				if f.Data != [8]byte{byte(pingAcks)} {
					t.Errorf("PING acknowledgment %d carries %v", pingAcks, f.Data)
				}
				pingAcks++
			}
		}
		// The first SETTINGS acknowledged is the app's initial one.
		if settingsAcks == flood+1 && pingAcks == flood {
			acks <- [2]int{settingsAcks, pingAcks}
		}
		return true
	})
	p := newH2Pool(0)
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	st := openTest(t, ctx, p, addr, &h2Request{method: http.MethodGet, authority: "app", path: "/"})
	st.Close()
	select {
	case <-acks:
	case <-ctx.Done():
		t.Fatal("not every SETTINGS and PING was acknowledged")
	}
	if err := st.cc.failure(); err != nil {
		t.Errorf("the connection failed: %v", err)
	}
}

// TestH2CClientCancelMidBody checks a client that resets its stream in
// the middle of its request body, the app having answered already: the
// app's stream is cancelled, and the stream's body goroutine, blocked on
// the client's body, ends (the package's goleak check).
func TestH2CClientCancelMidBody(t *testing.T) {
	t.Parallel()
	got, cancelled := make(chan struct{}), make(chan struct{})
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		_, _ = io.ReadFull(r.Body, buf)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(got)
		_, _ = io.Copy(io.Discard, r.Body) // until the stream is cancelled
		<-r.Context().Done()
		close(cancelled)
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true}
	front, c := newH2CFront(t, h)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front.URL+"/up", pr)
	go func() { _, _ = io.WriteString(pw, "hello") }() // and no more
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-got
	cancel() // the client resets its stream mid-body
	_ = res.Body.Close()
	<-cancelled
}

// TestH2PoolConnFailedAtOnce checks a connection that fails before the
// pool hands it to the request that dialled it (the app's first SETTINGS
// are a connection error, read first, as a loaded machine may schedule
// it): the request gets the connection and fails with its error. The pool
// does not dial again, which against such an app would go on until the
// request's context ended (and hung TestH2ClientHostileFrames's bad
// SETTINGS cases under load: their app accepts one connection).
func TestH2PoolConnFailedAtOnce(t *testing.T) {
	t.Parallel()
	addr := fakeApp(t, []http2.Setting{{ID: http2.SettingEnablePush, Val: 1}}, func(fr *http2.Framer, f http2.Frame) bool {
		_, away := f.(*http2.GoAwayFrame)
		return !away
	})
	p := newH2Pool(0)
	dials := 0
	p.dialed = func(cc *h2Conn) {
		if dials++; dials == 1 {
			<-cc.readDone // the connection failed
		}
	}
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cc, err := p.get(ctx, addr)
	if dials != 1 {
		t.Fatalf("the pool dialled %d connections for one request; want 1", dials)
	}
	if err == nil {
		_, err = cc.open(ctx, &h2Request{method: http.MethodGet, authority: "app", path: "/"})
	}
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "ENABLE_PUSH") {
		t.Errorf("the request: %v; want the connection's failure (ENABLE_PUSH)", err)
	}
}
