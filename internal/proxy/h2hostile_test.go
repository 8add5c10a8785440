package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// The tests in this file drive a hostile or broken app frame by frame
// (fakeApp, oneConnApp) against the h2c client. The package's TestMain
// runs goleak: every goroutine they start (read loops, body goroutines,
// idle timers' callbacks) must have ended by the end of the package's
// tests.

// TestH2ClientStalledApp checks an app that floods PINGs and reads
// nothing. Each PING is owed an acknowledgment (RFC 9113 §6.7); what the
// client holds of them is bounded by the connection's write buffer, after
// which the read loop's write of the next one waits, holding the write
// lock, as long as the app reads nothing. A new stream that needs the
// lock must not wait for its own context (a client hung for as long as
// requestTimeout, on every request sent to that connection): after the
// write-stall bound the connection is closed, the stream fails, and the
// read loop ends.
func TestH2ClientStalledApp(t *testing.T) {
	t.Parallel()
	addr := oneConnApp(t, func(c *net.TCPConn) {
		_ = c.SetReadBuffer(4 << 10)
		fr := http2.NewFramer(c, c)
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1 << 20})
		for fr.WritePing(false, [8]byte{7}) == nil {
		}
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
	select { // the app's limit of streams applies
	case <-cc.settingsDone:
	case <-ctx.Done():
		t.Fatal("no SETTINGS from the app")
	}
	var streams []*h2Stream
	defer func() {
		for _, st := range streams {
			st.Close()
		}
	}()
	// Streams are opened until one cannot be: the read loop (or an open)
	// is then stuck in its write.
	for {
		st, err := cc.open(ctx, &h2Request{method: http.MethodGet, authority: "app", path: "/"})
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("opening a stream on a stalled connection waited for its context: %v", err)
			}
			if !errors.Is(err, errH2WriteStalled) {
				t.Errorf("opening a stream on a stalled connection: %v; want %v", err, errH2WriteStalled)
			}
			break
		}
		streams = append(streams, st)
		if !cc.reserve() {
			if err := cc.failure(); !errors.Is(err, errH2WriteStalled) {
				t.Errorf("the stalled connection failed with %v; want %v", err, errH2WriteStalled)
			}
			break
		}
	}
	select {
	case <-cc.readDone:
	case <-ctx.Done():
		t.Fatal("the read loop of the stalled connection did not end")
	}
}
