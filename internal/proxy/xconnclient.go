package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file is the HTTP/2 client of one extended CONNECT stream (RFC
// 8441) to an h2c app: a WebSocket tunnel. net/http's HTTP/2 client
// refuses the ":protocol" pseudo-header (its header check rejects the
// name), and x/net/http2's Transport, which sends it, is deprecated and
// becomes a wrapper of net/http's with Go 1.27; so the stream is spoken
// here with x/net/http2's Framer and hpack. Each tunnel has a connection
// of its own: it opens with the client preface and SETTINGS, waits for
// the app's first SETTINGS (which must carry SETTINGS_ENABLE_CONNECT_PROTOCOL
// = 1, RFC 8441 §3), sends the CONNECT as stream 1 and then carries the
// tunnel's bytes in DATA frames both ways, under HTTP/2 flow control: what
// the app sends is held up to the receive window (xconnWindow) until the
// relay reads it, and WINDOW_UPDATEs give the app room as it does; what
// the client sends waits for the app's windows. Closing the tunnel resets
// the stream (RST_STREAM CANCEL) unless it ended both ways, and closes the
// connection.

// errNoExtendedConnect is an app whose first SETTINGS did not announce
// extended CONNECT.
var errNoExtendedConnect = errors.New("the app did not announce extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL) on its HTTP/2 connection")

// xconnWindow is the receive window of a tunnel's stream and connection:
// the most the app may send ahead of the client reading it. It is
// HTTP/2's initial window, so no SETTINGS or WINDOW_UPDATE is needed to
// set it.
const xconnWindow = 65535

// xconnStreamID is the tunnel's stream, the first of its connection.
const xconnStreamID = 1

// xconnTunnel is one extended CONNECT stream on a connection of its own.
// Its Read is the app's side of the tunnel, Write and CloseWrite the
// client's; Close ends both. Read and Write may run concurrently with each
// other and with Close.
type xconnTunnel struct {
	nc       net.Conn
	fr       *http2.Framer
	wmu      sync.Mutex // serialises frame writes
	readDone chan struct{}
	once     sync.Once

	mu   sync.Mutex // protects the fields below; cond waits on it
	cond sync.Cond
	// stopCtx stops closing the tunnel when the request's context ends.
	stopCtx func() bool
	// err is the connection's or the stream's failure, set once.
	err         error
	closed      bool // Close was called
	opened      bool // the request was sent: the stream exists
	appReset    bool // the app reset the stream
	heard       bool // a frame came from the app
	settings    bool // the app's first SETTINGS arrived
	xconnect    bool // ... and announced extended CONNECT
	maxFrame    uint32
	peerInitWin int64
	sendStream  int64 // the app's windows for what the tunnel sends
	sendConn    int64
	recvStream  int64 // the windows left to the app
	recvConn    int64
	unacked     int64 // bytes read or discarded, not yet returned to the app's windows
	status      int   // the response status; 0 until the header arrived
	header      http.Header
	recv        []byte // DATA received, not yet read
	remoteEnd   bool   // the app ended its side (END_STREAM)
	localEnd    bool   // the tunnel ended the client's side
	recvBuf     []byte // recv's storage, reused once recv is empty
	headerTable uint32 // the app's SETTINGS_HEADER_TABLE_SIZE
}

// dialXconn opens a connection to addr for one tunnel, exchanges
// SETTINGS with the app and sends the extended CONNECT (method CONNECT,
// ":protocol" websocket, scheme http) for target (the request path and
// query) at authority with fields (names in any case). It returns once the
// app's final response header arrived; the tunnel is open when its
// Status is 200. An app whose first SETTINGS does not announce extended
// CONNECT gives errNoExtendedConnect; a failure before the app sent
// anything is an *unheardError (the app did not process the request).
// wait bounds the dial and the wait for the SETTINGS and the response
// header (0: none beyond the dial timeout); ctx ending closes the tunnel
// at any time, until Close.
func dialXconn(ctx context.Context, addr, authority, target string, fields [][2]string, wait time.Duration) (*xconnTunnel, error) {
	dialTimeout := defaultDialTimeout
	if wait > 0 {
		dialTimeout = wait
	}
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &xconnTunnel{
		nc: nc, readDone: make(chan struct{}),
		maxFrame: 16384, peerInitWin: 65535, sendStream: 65535, sendConn: 65535,
		recvStream: xconnWindow, recvConn: xconnWindow, headerTable: 4096,
	}
	t.cond.L = &t.mu
	t.fr = http2.NewFramer(nc, nc)
	t.fr.SetMaxReadFrameSize(16384) // HTTP/2's default: no SETTINGS raise it
	t.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	t.fr.MaxHeaderListSize = maxResponseHeader
	if wait > 0 {
		_ = nc.SetReadDeadline(time.Now().Add(wait))
	}
	go t.readLoop()
	t.mu.Lock() // Close reads stopCtx, maybe at once
	t.stopCtx = context.AfterFunc(ctx, func() { _ = t.Close() })
	t.mu.Unlock()
	if err := t.open(authority, target, fields); err != nil {
		_ = t.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t.mu.Lock()
		heard := t.heard
		t.mu.Unlock()
		if !heard {
			// Not even SETTINGS came: the app did not process the stream.
			err = &unheardError{err}
		}
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Time{})
	return t, nil
}

// open sends the preface and SETTINGS, waits for the app's SETTINGS,
// sends the request and waits for the final response header.
func (t *xconnTunnel) open(authority, target string, fields [][2]string) error {
	t.wmu.Lock()
	_, err := io.WriteString(t.nc, http2.ClientPreface)
	if err == nil {
		err = t.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxResponseHeader})
	}
	t.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("write the HTTP/2 preface: %w", err)
	}

	t.mu.Lock()
	for !t.settings && t.err == nil {
		t.cond.Wait()
	}
	err, ok, maxFrame, table := t.err, t.xconnect, t.maxFrame, t.headerTable
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if !ok {
		return errNoExtendedConnect
	}

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	enc.SetMaxDynamicTableSizeLimit(table)
	for _, f := range [][2]string{{":method", http.MethodConnect}, {":protocol", "websocket"},
		{":scheme", "http"}, {":path", target}, {":authority", authority}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: strings.ToLower(f[0]), Value: f[1],
			Sensitive: strings.EqualFold(f[0], headerToken)})
	}
	t.wmu.Lock()
	err = t.writeHeaderBlock(block.Bytes(), int(maxFrame))
	t.wmu.Unlock()
	t.mu.Lock()
	t.opened = true
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("send the extended CONNECT: %w", err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	for t.status == 0 && t.err == nil {
		t.cond.Wait()
	}
	if t.status == 0 {
		return t.err
	}
	return nil
}

// writeHeaderBlock writes the request's header block as HEADERS and as
// many CONTINUATION frames as it needs. Called with wmu held.
func (t *xconnTunnel) writeHeaderBlock(b []byte, maxFrame int) error {
	first := true
	for first || len(b) > 0 {
		n := min(len(b), maxFrame)
		frag, end := b[:n], n == len(b)
		b = b[n:]
		var err error
		if first {
			err = t.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: xconnStreamID, BlockFragment: frag, EndHeaders: end})
			first = false
		} else {
			err = t.fr.WriteContinuation(xconnStreamID, end, frag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Status is the app's response status; Header its fields.
func (t *xconnTunnel) Status() int { return t.status }

// Header returns the app's response fields.
func (t *xconnTunnel) Header() http.Header { return t.header }

// fail records err as the tunnel's failure (the first one counts) and
// wakes every wait. Called with mu held.
func (t *xconnTunnel) fail(err error) {
	if t.err == nil {
		t.err = err
	}
	t.cond.Broadcast()
}

// readLoop reads the app's frames until the connection fails or is
// closed.
func (t *xconnTunnel) readLoop() {
	defer close(t.readDone)
	for {
		f, err := t.fr.ReadFrame()
		if err != nil {
			t.mu.Lock()
			if t.closed {
				err = net.ErrClosed
			} else if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			t.fail(fmt.Errorf("app HTTP/2 connection: %w", err))
			t.mu.Unlock()
			return
		}
		t.mu.Lock()
		t.heard = true
		t.mu.Unlock()
		if err := t.handle(f); err != nil {
			t.mu.Lock()
			t.fail(err)
			t.mu.Unlock()
			_ = t.nc.Close() // ends ReadFrame
		}
	}
}

// handle processes one frame from the app.
func (t *xconnTunnel) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		t.mu.Lock()
		err := f.ForeachSetting(func(s http2.Setting) error {
			if err := s.Valid(); err != nil {
				return err
			}
			switch s.ID {
			case http2.SettingEnableConnectProtocol:
				// Only the first SETTINGS counts (as in Go's client):
				// the request waits for it, and a later one must not
				// change the answer.
				if !t.settings {
					t.xconnect = s.Val == 1
				}
			case http2.SettingInitialWindowSize:
				delta := int64(s.Val) - t.peerInitWin
				t.peerInitWin = int64(s.Val)
				t.sendStream += delta
			case http2.SettingMaxFrameSize:
				t.maxFrame = s.Val
			case http2.SettingHeaderTableSize:
				t.headerTable = s.Val
			}
			return nil
		})
		t.settings = true
		t.cond.Broadcast()
		t.mu.Unlock()
		if err != nil {
			return err
		}
		return t.write(func() error { return t.fr.WriteSettingsAck() })
	case *http2.MetaHeadersFrame:
		if f.StreamID != xconnStreamID {
			return fmt.Errorf("app sent HEADERS on stream %d", f.StreamID)
		}
		if f.Truncated {
			return malformed("response header over %d bytes", maxResponseHeader)
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.status == 0 {
			code, err := strconv.Atoi(f.PseudoValue("status"))
			if err != nil || code < 100 || code > 999 {
				return malformed("response :status %q", trunc(f.PseudoValue("status")))
			}
			if code < 200 {
				return nil // informational: the final answer follows
			}
			h := make(http.Header, len(f.Fields))
			for _, hf := range f.RegularFields() {
				k := http.CanonicalHeaderKey(hf.Name)
				h[k] = append(h[k], hf.Value)
			}
			t.status, t.header = code, h
		}
		if f.StreamEnded() {
			t.remoteEnd = true
		}
		t.cond.Broadcast()
		return nil
	case *http2.DataFrame:
		if f.StreamID != xconnStreamID {
			return fmt.Errorf("app sent DATA on stream %d", f.StreamID)
		}
		n := int64(f.Length)
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.status == 0 || t.remoteEnd {
			return malformed("DATA outside the response body")
		}
		if n > t.recvStream || n > t.recvConn {
			return errors.New("app sent more than the flow-control window (FLOW_CONTROL_ERROR)")
		}
		t.recvStream -= n
		t.recvConn -= n
		data := f.Data()
		t.unacked += n - int64(len(data)) // padding counts against the window only
		if len(data) > 0 && !t.closed {
			if len(t.recv) == 0 {
				t.recv = t.recvBuf[:0]
			}
			t.recv = append(t.recv, data...)
			t.recvBuf = t.recv[:0]
		}
		if f.StreamEnded() {
			t.remoteEnd = true
		}
		t.cond.Broadcast()
		return nil
	case *http2.WindowUpdateFrame:
		t.mu.Lock()
		if f.StreamID == 0 {
			t.sendConn += int64(f.Increment)
		} else {
			t.sendStream += int64(f.Increment)
		}
		t.cond.Broadcast()
		t.mu.Unlock()
		return nil
	case *http2.RSTStreamFrame:
		t.mu.Lock()
		t.appReset = true
		t.fail(fmt.Errorf("app reset the stream: %v", f.ErrCode))
		t.mu.Unlock()
		return nil
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		return t.write(func() error { return t.fr.WritePing(true, f.Data) })
	case *http2.GoAwayFrame:
		if f.LastStreamID < xconnStreamID {
			// The stream was not processed.
			return fmt.Errorf("app sent GOAWAY (%v) before the extended CONNECT was processed", f.ErrCode)
		}
		return nil // the stream goes on; the connection closes after it
	}
	return nil
}

// write runs one frame write with wmu held.
func (t *xconnTunnel) write(fn func() error) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return fn()
}

// Read reads what the app sent on the stream, returning io.EOF once it
// ended its side, and gives the app back room in its windows.
func (t *xconnTunnel) Read(p []byte) (int, error) {
	t.mu.Lock()
	for len(t.recv) == 0 && !t.remoteEnd && t.err == nil && !t.closed {
		t.cond.Wait()
	}
	if len(t.recv) == 0 {
		defer t.mu.Unlock()
		switch {
		case t.closed:
			return 0, net.ErrClosed
		case t.remoteEnd:
			return 0, io.EOF
		}
		return 0, t.err
	}
	n := copy(p, t.recv)
	t.recv = t.recv[n:]
	t.unacked += int64(n)
	// Give the room back once a quarter of the window was used: the app
	// always has three quarters of it to send ahead.
	var inc int64
	if t.unacked >= xconnWindow/4 && !t.remoteEnd {
		inc, t.unacked = t.unacked, 0
		t.recvStream += inc
		t.recvConn += inc
	}
	t.mu.Unlock()
	if inc > 0 {
		_ = t.write(func() error {
			if err := t.fr.WriteWindowUpdate(0, uint32(inc)); err != nil {
				return err
			}
			return t.fr.WriteWindowUpdate(xconnStreamID, uint32(inc))
		})
	}
	return n, nil
}

// Write sends p to the app as DATA frames, each within the app's windows
// and frame size, waiting for room as the app gives it.
func (t *xconnTunnel) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		t.mu.Lock()
		for (t.sendStream <= 0 || t.sendConn <= 0) && t.err == nil && !t.closed && !t.localEnd {
			t.cond.Wait()
		}
		switch {
		case t.closed || t.localEnd:
			t.mu.Unlock()
			return written, net.ErrClosed
		case t.err != nil:
			err := t.err
			t.mu.Unlock()
			return written, err
		}
		n := int64(len(p))
		n = min(n, int64(t.maxFrame), t.sendStream, t.sendConn)
		t.sendStream -= n
		t.sendConn -= n
		t.mu.Unlock()
		if err := t.write(func() error { return t.fr.WriteData(xconnStreamID, false, p[:n]) }); err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// CloseWrite ends the client's side of the stream (END_STREAM); the
// app's side goes on.
func (t *xconnTunnel) CloseWrite() error {
	t.mu.Lock()
	if t.localEnd || t.closed || t.err != nil {
		t.mu.Unlock()
		return nil
	}
	t.localEnd = true
	t.cond.Broadcast()
	t.mu.Unlock()
	return t.write(func() error { return t.fr.WriteData(xconnStreamID, true, nil) })
}

// Close ends the tunnel: the stream, once opened, is reset (RST_STREAM
// CANCEL) unless both sides ended it, and the connection is closed. It waits for the read
// loop to end.
func (t *xconnTunnel) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.stopCtx()
		t.closed = true
		// A stream the app reset, or ended both ways, needs no reset;
		// after a read failure (a timeout) the connection may still
		// take one.
		reset := t.opened && !t.appReset && !(t.remoteEnd && t.localEnd)
		t.recv = nil
		t.cond.Broadcast()
		t.mu.Unlock()
		// A Write blocked on a full socket holds wmu: the reset is then
		// left out, and closing the connection ends the stream anyway.
		if reset && t.wmu.TryLock() {
			_ = t.nc.SetWriteDeadline(time.Now().Add(time.Second))
			_ = t.fr.WriteRSTStream(xconnStreamID, http2.ErrCodeCancel)
			t.wmu.Unlock()
		}
		_ = t.nc.Close()
	})
	<-t.readDone
	return nil
}
