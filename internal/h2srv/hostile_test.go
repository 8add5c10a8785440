package h2srv

import (
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestPathBytes sends :path values an HTTP/1.1 request line cannot carry:
// a space or a tab makes the request malformed (reset with PROTOCOL_ERROR,
// no handler), and bytes beyond ASCII and '#' reach the handler
// percent-encoded, never raw (they would be forwarded into the app's
// request line as they are).
func TestPathBytes(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 1)
	p := serve(t, testConfig(), func(st *Stream) {
		paths <- st.Path
		hello(st)
	})
	id := uint32(1)
	for _, path := range []string{"/index.txt HTTP/1.1", "/a\tb", "/a?b c"} {
		p.headers(id, true, ":path", path)
		p.expectRST(id, http2.ErrCodeProtocol)
		id += 2
	}
	p.headers(id, true, ":path", "/caf\xc3\xa9#x?q=\xff")
	if r := p.response(id); r.status != "200" {
		t.Fatalf("a path beyond ASCII: %+v", r)
	}
	if got, want := <-paths, "/caf%C3%A9%23x?q=%FF"; got != want {
		t.Fatalf("the handler got :path %q, want %q", got, want)
	}
}

// TestWindowStallBounded has a client that reads every frame but never
// gives window: the handler's Write, waiting for room, fails after the
// send timeout instead of waiting for ever, and the stream is reset with
// INTERNAL_ERROR.
func TestWindowStallBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.SendTimeout = 200 * time.Millisecond
	wrote := make(chan error, 1)
	p := serve(t, cfg, func(st *Stream) {
		_, err := st.Write(make([]byte, 100<<10)) // beyond the initial 64 KiB window
		wrote <- err
	})
	p.headers(1, true)
	p.expectRST(1, http2.ErrCodeInternal)
	if err := <-wrote; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the handler's Write: %v, want a deadline error", err)
	}
}

// TestContinueRacesFinalHeader reads a request body that expects 100
// Continue on a goroutine of its own while the handler answers at once
// (as the forwarder does: the body goes to the app while its answer comes
// back): the 100 Continue and the final header must not race (go test
// -race), and no 100 Continue may follow the final header.
func TestContinueRacesFinalHeader(t *testing.T) {
	t.Parallel()
	p := serve(t, testConfig(), func(st *Stream) {
		read := make(chan struct{})
		go func() {
			defer close(read)
			_, _ = io.Copy(io.Discard, st)
		}()
		st.WriteHeader(http.StatusUnauthorized)
		st.Flush()
		<-read
	})
	for id := uint32(1); id < 40; id += 2 {
		p.headers(id, false, ":method", "POST", "expect", "100-continue", "content-length", "1")
		final := false
		for done := false; !done; {
			f := p.read()
			if f == nil {
				t.Fatal("connection ended")
			}
			if f.Header().StreamID != id {
				continue
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				status := f.PseudoValue("status")
				if final && status != "" {
					t.Fatalf("stream %d: %s after the final header", id, status)
				}
				if status == "401" {
					final = true
					_ = p.fr.WriteData(id, true, []byte("x"))
				}
				done = f.StreamEnded()
			case *http2.DataFrame:
				done = f.StreamEnded()
			case *http2.RSTStreamFrame:
				done = true
			}
		}
	}
}

// TestRefusalsDoNotAccumulate refuses a stream now and then over a long
// connection, each time while the handler of a stream the client reset
// still runs (as a busy client at its stream limit meets a handler that
// has not returned yet), with the handlers done in between: the client
// is never told ENHANCE_YOUR_CALM. Only refusals while the handlers stay
// saturated are a rapid reset (TestRapidReset).
func TestRefusalsDoNotAccumulate(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxConcurrentStreams = 1
	idle := make(chan bool, 16)
	cfg.OnIdle = func(i bool) { idle <- i }
	started := make(chan struct{}, 1)
	release, stop := make(chan struct{}), make(chan struct{})
	p := serve(t, cfg, func(st *Stream) {
		started <- struct{}{}
		select {
		case <-release:
		case <-stop: // the test ended
		}
	})
	t.Cleanup(func() { close(stop) }) // before serve's, which waits for the handlers
	waitIdle := func() {
		for !<-idle {
		}
	}
	waitIdle() // the connection's start
	id := uint32(1)
	for range calmFactor*cfg.MaxConcurrentStreams + 2 {
		p.headers(id, true)
		<-started
		_ = p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		p.headers(id+2, true)
		p.expectRST(id+2, http2.ErrCodeRefusedStream)
		release <- struct{}{}
		waitIdle()
		id += 4
	}
}

// TestShutdownBeforeStart shuts a connection down before it served its
// preface (a drain that meets a connection just accepted): the server's
// SETTINGS are still its first frame (RFC 9113 §3.4), then the GOAWAY
// follows.
func TestShutdownBeforeStart(t *testing.T) {
	t.Parallel()
	p := serveHooked(t, testConfig(), hello, func(c *Conn) { c.Shutdown() })
	f, err := p.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		t.Fatalf("first frame %v, want the server's SETTINGS", f)
	}
	p.expectGoAway(http2.ErrCodeNo)
}

// TestAuthorityRequired sends an http(s) request with neither :authority
// nor Host, which RFC 9113 §8.3.1 calls malformed (HTTP/1.1 refuses a
// request without Host too): it is reset with PROTOCOL_ERROR, unheard;
// one with Host alone is served with it as its authority.
func TestAuthorityRequired(t *testing.T) {
	t.Parallel()
	authorities := make(chan string, 1)
	p := serve(t, testConfig(), func(st *Stream) {
		authorities <- st.Authority
		hello(st)
	})
	p.headers(1, true, ":authority", "-")
	p.expectRST(1, http2.ErrCodeProtocol)
	p.headers(3, true, ":authority", "-", "host", "example.com")
	if r := p.response(3); r.status != "200" {
		t.Fatalf("a request with Host alone: %+v", r)
	}
	if got := <-authorities; got != "example.com" {
		t.Fatalf("authority %q, want Host's example.com", got)
	}
}

// TestNoDataAfterReset resets a stream here (as a stream error or the
// tunnel's Close do) while its handler's Write has taken window and waits
// for the write lock: no DATA may follow the RST_STREAM (RFC 9113 §5.1),
// and the Write fails.
func TestNoDataAfterReset(t *testing.T) {
	t.Parallel()
	streams := make(chan *Stream, 1)
	goWrite := make(chan struct{})
	wrote := make(chan error, 1)
	var hc *Conn
	p := serveConn(t, testConfig(), func(st *Stream) {
		st.WriteHeader(http.StatusOK)
		st.Flush()
		streams <- st
		<-goWrite
		_, err := st.Write([]byte("late"))
		wrote <- err
	}, &hc)
	p.headers(1, true)
	st := <-streams
	hc.wmu.Lock()
	close(goWrite)
	// The Write has passed its check once it took window; it then waits
	// for the write lock.
	for {
		hc.mu.Lock()
		took := st.sendWin < hc.peer.InitWin
		hc.mu.Unlock()
		if took {
			break
		}
		runtime.Gosched()
	}
	hc.mu.Lock()
	hc.resetLocked(st, errBodyClosed)
	hc.mu.Unlock()
	err := hc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	hc.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err == nil {
		t.Error("a Write on a reset stream succeeded")
	}
	reset := false
	p.untilPingAck(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			reset = reset || f.StreamID == 1
		case *http2.DataFrame:
			if f.StreamID == 1 && reset {
				t.Fatal("DATA after the RST_STREAM")
			}
		}
	})
	if !reset {
		t.Fatal("no RST_STREAM")
	}
}

// TestDataAfterServerResetIgnored sends DATA on streams the server reset
// and closed, as a client does before it sees the RST_STREAM: one refused
// as malformed, one whose handler reset it (Close) and returned. The DATA
// are ignored (RFC 9113 §5.4.2), not answered with RST_STREAM
// STREAM_CLOSED each, and their room in the connection's window is given
// back: more than the whole window is sent, and the connection goes on.
func TestDataAfterServerResetIgnored(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	idle := make(chan bool, 16)
	cfg.OnIdle = func(i bool) { idle <- i }
	p := serve(t, cfg, func(st *Stream) { _ = st.Close() })
	for !<-idle { // the connection's start
	}
	p.headers(1, false, ":method", "POST", ":path", "/a b")
	p.expectRST(1, http2.ErrCodeProtocol)
	p.headers(3, false, ":method", "POST")
	p.expectRST(3, http2.ErrCodeCancel)
	for !<-idle { // stream 3's handler returned: the stream is closed
	}
	chunk := make([]byte, cfg.MaxReadFrameSize)
	for range 2 * int(cfg.ConnWindow) / len(chunk) / 2 {
		for _, id := range []uint32{1, 3} {
			if err := p.fr.WriteData(id, false, chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.untilPingAck(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %v on stream %d after the server reset it", f.ErrCode, f.StreamID)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	})
}

// TestZeroWindowUpdate sends WINDOW_UPDATE frames with an increment of 0,
// which the Framer reports as a stream error without the frame's type.
// On an idle stream (an odd id the client has not used yet, or an even
// one) it is a connection error PROTOCOL_ERROR (RFC 9113 §5.1), not a
// reset that would mark the stream id used and refuse a later HEADERS on
// it or a lower id. On an open stream it resets that stream only
// (PROTOCOL_ERROR, §6.9), and the connection goes on.
func TestZeroWindowUpdate(t *testing.T) {
	t.Parallel()
	for _, id := range []uint32{5, 2} {
		t.Run("idle "+strconv.Itoa(int(id)), func(t *testing.T) {
			t.Parallel()
			p := serve(t, testConfig(), hello)
			p.fr.AllowIllegalWrites = true
			if err := p.fr.WriteWindowUpdate(id, 0); err != nil {
				t.Fatal(err)
			}
			switch f := p.read().(type) {
			case *http2.GoAwayFrame:
				if f.ErrCode != http2.ErrCodeProtocol || f.LastStreamID != 0 {
					t.Fatalf("GOAWAY %v naming stream %d, want PROTOCOL_ERROR naming 0", f.ErrCode, f.LastStreamID)
				}
			case nil:
				t.Fatal("connection ended without a GOAWAY")
			default:
				t.Fatalf("%v, want a GOAWAY PROTOCOL_ERROR", f)
			}
		})
	}
	t.Run("open", func(t *testing.T) {
		t.Parallel()
		p := serve(t, testConfig(), func(st *Stream) {
			if st.ID() == 3 {
				<-st.Context().Done() // the reset, or the test's end
				return
			}
			hello(st)
		})
		p.headers(3, false, ":method", "POST")
		p.fr.AllowIllegalWrites = true
		if err := p.fr.WriteWindowUpdate(3, 0); err != nil {
			t.Fatal(err)
		}
		p.expectRST(3, http2.ErrCodeProtocol)
		p.headers(5, true)
		if r := p.response(5); r.status != "200" {
			t.Fatalf("stream 5 after the reset of stream 3: %+v", r)
		}
	})
}
