package proxy

import (
	"bufio"
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
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/batchconn"
	"github.com/gatehouse/gatehouse/internal/h2conn"
)

// This file is the HTTP/2 client (prior knowledge, cleartext) that speaks
// to h2c apps, for ordinary requests and for extended CONNECT tunnels
// (RFC 8441), on x/net/http2's Framer and hpack. A connection has one
// read loop goroutine and a map of its streams. A request is written from
// the goroutine that forwards it: its HEADERS (and CONTINUATIONs), then,
// when it has a body, its DATA frames from one body goroutine the stream
// owns, as the body arrives, under the app's flow-control windows; a
// tunnel's bytes are written by the relay that owns it. Writes are
// serialised by a write lock and gathered by batchconn. The fields were
// checked by the proxy's rules before they get here and are encoded as
// they are.
//
// Received DATA is kept per stream up to the stream's receive window
// (h2StreamWindow) and the connection's (h2ConnWindow) until the handler
// reads it; WINDOW_UPDATEs give the room back as it does. A stream the
// app refused (REFUSED_STREAM) or left above the last stream id of its
// GOAWAY fails with an *h2NotProcessedError: it may be sent again. A
// stream whose context ends is reset (RST_STREAM CANCEL).

const (
	// h2StreamWindow is the receive window of each stream: the most an app
	// sends ahead of the client reading it, per stream.
	h2StreamWindow = 1 << 20
	// h2ConnWindow is the receive window of a connection, across its
	// streams.
	h2ConnWindow = 16 << 20
	// h2InitialMaxStreams is the number of concurrent streams assumed for
	// a new connection until the app's SETTINGS arrive, as Go's client
	// does; h2DefaultMaxStreams the number when its SETTINGS name none.
	h2InitialMaxStreams = 100
	h2DefaultMaxStreams = 1000
	// h2WriteStall bounds the wait for the write lock of a write that has
	// no context of its own (a reset, a SETTINGS or PING acknowledgment)
	// and of a stream's opening: a connection on which no frame could be
	// written that long (an app that stopped reading, so the lock's
	// holder waits in its write) is closed, and its streams fail.
	h2WriteStall = 10 * time.Second
)

var (
	// errNoExtendedConnect is an app whose first SETTINGS did not announce
	// extended CONNECT.
	errNoExtendedConnect = errors.New("the app did not announce extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL) on its HTTP/2 connection")
	// errH2WriteStalled is a connection on which no frame could be written
	// for h2WriteStall.
	errH2WriteStalled = errors.New("app HTTP/2 connection: writes stalled")
	// errStreamClosed is a stream used after its Close.
	errStreamClosed = errors.New("app HTTP/2 stream closed")
)

// h2NotProcessedError is a stream the app did not process: it refused it,
// or it was above the last stream id of the app's GOAWAY.
type h2NotProcessedError struct{ why string }

func (e *h2NotProcessedError) Error() string {
	return "app HTTP/2 stream not processed: " + e.why
}

// h2StreamError is a stream the app reset with code.
type h2StreamError struct{ code http2.ErrCode }

func (e *h2StreamError) Error() string { return "app reset the stream: " + e.code.String() }

// h2Windows are a connection's receive windows, and its write-stall
// bound (0: h2WriteStall); tests make them small.
type h2Windows struct {
	stream, conn int64
	stall        time.Duration
}

var defaultH2Windows = h2Windows{stream: h2StreamWindow, conn: h2ConnWindow}

// h2Conn is one HTTP/2 connection to an app process.
type h2Conn struct {
	nc   net.Conn // batchconn
	fr   *http2.Framer
	win  h2Windows
	wsem chan struct{} // the write lock: one frame writer at a time
	// henc and hbuf encode header blocks; used with the write lock held.
	henc *hpack.Encoder
	hbuf bytes.Buffer
	// token and tokenBlock are the pairing token last sent and its
	// encoded field (encodeToken); used with the write lock held.
	token      string
	tokenBlock []byte
	// heard is set once a frame came from the app. An HTTP/2 server's
	// first frame is its SETTINGS; a connection that failed before it (the
	// process died or reset it as it accepted it) is taken to have had
	// none of its streams processed.
	heard atomic.Bool
	// settingsDone is closed when the app's first SETTINGS arrived or the
	// connection failed.
	settingsDone chan struct{}
	done         chan struct{} // closed when the connection failed or closed
	readDone     chan struct{} // closed when the read loop ended
	idle         *time.Timer   // closes the connection once idle for idleConnTimeout
	lastActive   atomic.Int64  // UnixNano of the last stream's end

	mu         sync.Mutex // protects the fields below; the streams' conds wait on it
	streams    map[uint32]*h2Stream
	nextID     uint32
	reserved   int    // streams reserved in the pool, not opened yet
	maxStreams uint32 // the app's SETTINGS_MAX_CONCURRENT_STREAMS
	sendConn   int64  // the app's connection window for what is sent
	settings   bool   // the app's first SETTINGS arrived
	xconnect   bool   // ... and announced extended CONNECT
	goAway     bool   // the app sent GOAWAY, or no stream id is left
	closing    bool   // close once no stream is left (closeIdle)
	err        error  // the connection's failure, set once
	// peer holds the app's other SETTINGS, recv the accounting of the
	// connection's receive window.
	peer h2conn.Peer
	recv h2conn.ConnRecv
}

// dialH2 opens an HTTP/2 connection to addr: it connects (within
// dialTimeout), sends the preface, its SETTINGS and the connection
// window, and starts the read loop. It does not wait for the app's
// SETTINGS: requests may be sent at once. The connection comes with one
// stream reserved, for the caller's first open, taken before the read
// loop starts: whatever the app sends first (a connection error, a
// GOAWAY, SETTINGS_MAX_CONCURRENT_STREAMS 0) reaches that open, which
// reports it.
func dialH2(ctx context.Context, addr string, dialTimeout time.Duration, win h2Windows) (*h2Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The frames of a call are gathered into one write (package batchconn).
	nc := batchconn.New(raw)
	if win.stall <= 0 {
		win.stall = h2WriteStall
	}
	cc := &h2Conn{
		nc: nc, win: win, wsem: make(chan struct{}, 1),
		settingsDone: make(chan struct{}), done: make(chan struct{}), readDone: make(chan struct{}),
		streams: map[uint32]*h2Stream{}, nextID: 1, reserved: 1,
		maxStreams: h2InitialMaxStreams, sendConn: h2conn.InitialWindow, peer: h2conn.NewPeer(),
		recv: h2conn.NewConnRecv(win.conn),
	}
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	// The client's SETTINGS announce no frame size larger than HTTP/2's
	// default.
	cc.fr = h2conn.NewFramer(nc, bufio.NewReaderSize(nc, h2conn.ReadBuffer), h2conn.DefaultMaxFrameSize, maxResponseHeader)
	_, err = io.WriteString(nc, http2.ClientPreface)
	if err == nil {
		err = cc.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(win.stream)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxResponseHeader})
	}
	if err == nil && win.conn > h2conn.InitialWindow {
		err = cc.fr.WriteWindowUpdate(0, uint32(win.conn-h2conn.InitialWindow))
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("write the HTTP/2 preface: %w", err)
	}
	cc.lastActive.Store(time.Now().UnixNano())
	cc.idle = time.AfterFunc(idleConnTimeout, cc.closeIfIdle)
	go cc.readLoop()
	return cc, nil
}

// lockWrite takes the write lock. It gives up when done is closed (the
// caller's context), or the connection fails; and, with bounded, after
// the connection's write-stall bound (win.stall), when it closes the
// stalled connection. Bounded are the writes without a context (resets,
// acknowledgments, WINDOW_UPDATEs) and a stream's opening: a holder
// blocked for good in its write (an app that stopped reading) must not
// hold up every new stream for as long as its context lasts. A stream's
// DATA and end wait for its context alone, which ends in a reset, itself
// bounded: the timer stays off the contended path of every DATA frame.
func (cc *h2Conn) lockWrite(done <-chan struct{}, bounded bool) error {
	select {
	case cc.wsem <- struct{}{}:
		return nil
	default:
	}
	var stall <-chan time.Time
	if bounded {
		t := time.NewTimer(cc.win.stall)
		defer t.Stop()
		stall = t.C
	}
	select {
	case cc.wsem <- struct{}{}:
		return nil
	case <-done:
		return context.Canceled
	case <-cc.done:
		return cc.failure()
	case <-stall:
		cc.fail(errH2WriteStalled)
		return errH2WriteStalled
	}
}

func (cc *h2Conn) unlockWrite() { <-cc.wsem }

// write runs fn (frame writes) with the write lock held; a write failure
// fails the connection.
func (cc *h2Conn) write(done <-chan struct{}, fn func() error) error {
	if err := cc.lockWrite(done, done == nil); err != nil {
		return err
	}
	err := fn()
	cc.unlockWrite()
	if err != nil {
		cc.fail(fmt.Errorf("app HTTP/2 connection: write: %w", err))
	}
	return err
}

// failure returns the connection's failure.
func (cc *h2Conn) failure() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// fail ends the connection with err: its streams fail, the socket is
// closed (which ends the read loop).
func (cc *h2Conn) fail(err error) {
	cc.mu.Lock()
	first := cc.err == nil
	if first {
		cc.err = err
		for _, st := range cc.streams {
			st.failLocked(err)
		}
		if !cc.settings {
			cc.settings = true
			close(cc.settingsDone)
		}
		close(cc.done)
	}
	cc.mu.Unlock()
	if first {
		cc.idle.Stop()
		_ = cc.nc.Close()
	}
}

// close closes the connection.
func (cc *h2Conn) close() { cc.fail(net.ErrClosed) }

// usableLocked reports whether a new stream may be reserved on cc.
func (cc *h2Conn) usableLocked() bool {
	return cc.err == nil && !cc.goAway && !cc.closing &&
		uint32(len(cc.streams)+cc.reserved) < cc.maxStreams
}

// reserve reserves a stream for open; false when cc has none free.
func (cc *h2Conn) reserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.usableLocked() {
		return false
	}
	cc.reserved++
	return true
}

// gone reports whether cc failed or takes no new streams.
func (cc *h2Conn) gone() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err != nil || cc.goAway
}

// closeWhenIdle closes cc now if it has no stream, else once its last
// stream ends; no stream is opened on it any more.
func (cc *h2Conn) closeWhenIdle() {
	cc.mu.Lock()
	cc.closing = true
	idle := len(cc.streams) == 0 && cc.reserved == 0
	cc.mu.Unlock()
	if idle {
		cc.close()
	}
}

// closeIfIdle is the idle timer: it closes cc once it had no stream for
// idleConnTimeout, and re-arms itself otherwise.
func (cc *h2Conn) closeIfIdle() {
	since := time.Since(time.Unix(0, cc.lastActive.Load()))
	cc.mu.Lock()
	busy := len(cc.streams) > 0 || cc.reserved > 0
	failed := cc.err != nil
	idle := !failed && !busy && since >= idleConnTimeout
	if idle {
		cc.closing = true // no stream may be reserved on it any more
	}
	cc.mu.Unlock()
	if idle {
		cc.close()
	}
	if failed || idle {
		return
	}
	next := idleConnTimeout - since
	if busy || next <= 0 {
		next = idleConnTimeout
	}
	cc.idle.Reset(next)
}

// h2Request is what a stream sends: the pseudo-header fields, the other
// fields (names in any case), and the body.
type h2Request struct {
	method, authority, path string
	protocol                string // ":protocol" of an extended CONNECT, else ""
	fields                  [][2]string
	contentLength           int64 // -1: unknown
	// body is the request body, nil when there is none; a tunnel writes
	// through the stream instead. The stream closes it when it fails or
	// closes; a Read then under way must end, at the latest when the
	// body's owner ends it (replayBody.finish).
	body io.ReadCloser
	// trailer holds the trailer fields to send after the body, filled in
	// by the time body returns io.EOF; its names are announced in a
	// trailer field.
	trailer http.Header
	tunnel  bool // the stream stays open for Write
}

// open opens a stream reserved with reserve and sends req's header (and,
// from a goroutine of the stream, its body). ctx ending resets the
// stream, until Close.
func (cc *h2Conn) open(ctx context.Context, req *h2Request) (*h2Stream, error) {
	if err := cc.lockWrite(ctx.Done(), true); err != nil {
		cc.mu.Lock()
		cc.reserved--
		cc.mu.Unlock()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	cc.mu.Lock()
	cc.reserved--
	var err error
	switch {
	case cc.err != nil:
		err = cc.err
	case cc.goAway:
		err = &h2NotProcessedError{"the app sent GOAWAY"}
	case cc.nextID > h2conn.MaxStreamID:
		cc.goAway = true
		err = &h2NotProcessedError{"no stream id left on the connection"}
	}
	if err != nil {
		cc.mu.Unlock()
		cc.unlockWrite()
		return nil, err
	}
	endStream := req.body == nil && !req.tunnel
	st := &h2Stream{cc: cc, id: cc.nextID, ctx: ctx, sendWin: cc.peer.InitWin, recv: h2conn.NewStreamRecv(cc.win.stream),
		contentLength: -1, bodyLeft: -1, body: req.body, localEnd: endStream,
		bodyless: req.tunnel || req.method == http.MethodHead}
	st.cond.L = &cc.mu
	cc.nextID += 2
	cc.streams[st.id] = st
	maxFrame := cc.peer.MaxFrame
	cc.syncTableLocked()
	cc.mu.Unlock()

	cc.encodeRequest(req)
	err = h2conn.WriteHeaderBlock(cc.fr, st.id, cc.hbuf.Bytes(), endStream, int(maxFrame))
	cc.unlockWrite()
	if err != nil {
		err = fmt.Errorf("app HTTP/2 connection: write: %w", err)
		cc.fail(err)
		st.Close()
		return nil, err
	}
	st.ctxReset.Add(1)
	st.stopCtx = context.AfterFunc(ctx, func() {
		defer st.ctxReset.Done()
		st.cancel(context.Cause(ctx))
	})
	if req.body != nil {
		go st.sendBody(req.body, req.trailer)
	}
	return st, nil
}

// encodeRequest encodes req's header block into cc.hbuf. Called with the
// write lock held.
func (cc *h2Conn) encodeRequest(req *h2Request) {
	cc.hbuf.Reset()
	enc := cc.henc
	_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: req.method})
	if req.protocol != "" {
		_ = enc.WriteField(hpack.HeaderField{Name: ":protocol", Value: req.protocol})
	}
	_ = enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: "http"})
	_ = enc.WriteField(hpack.HeaderField{Name: ":authority", Value: req.authority})
	_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: req.path})
	for _, f := range req.fields {
		if len(f[0]) == len(headerToken) && strings.EqualFold(f[0], headerToken) {
			cc.encodeToken(f[1])
			continue
		}
		name := requestNames.Lower(f[0])
		// A grpc-timeout is the time left, a new value in every request:
		// indexed, it would push the fields that repeat out of the
		// app's table, to be sent and added again. It goes as a literal
		// never indexed, which leaves the table as it is.
		_ = enc.WriteField(hpack.HeaderField{Name: name, Value: f[1], Sensitive: name == "grpc-timeout"})
	}
	if len(req.trailer) > 0 || req.contentLength >= 0 {
		cc.encodeBodyFields(req)
	}
}

// encodeBodyFields encodes the fields that announce req's body: its
// trailer names and its length. It is a function of its own so that its
// locals are not in encodeRequest's stack frame, which every request's
// goroutine carries below the HPACK encoder: a larger one makes the
// runtime copy more handler stacks to a bigger size.
func (cc *h2Conn) encodeBodyFields(req *h2Request) {
	enc := cc.henc
	if len(req.trailer) > 0 {
		names := make([]string, 0, len(req.trailer))
		for k := range req.trailer {
			names = append(names, k)
		}
		_ = enc.WriteField(hpack.HeaderField{Name: "trailer", Value: strings.Join(names, ", ")})
	}
	switch cl := req.contentLength; {
	case cl > 0:
		var b [20]byte
		_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: string(strconv.AppendInt(b[:0], cl, 10))})
	case cl == 0 && !req.tunnel && (req.method == http.MethodPost || req.method == http.MethodPut || req.method == http.MethodPatch):
		_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: "0"})
	}
}

// encodeToken encodes the pairing token's field into cc.hbuf. It is never
// indexed (a secret stays out of the app's table, RFC 7541 §7.1.3), so
// its encoding is the same bytes in every request: they are kept per
// connection. Called with the write lock held.
func (cc *h2Conn) encodeToken(v string) {
	if v != cc.token || cc.tokenBlock == nil {
		var b bytes.Buffer
		_ = hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: requestNames.Lower(headerToken), Value: v, Sensitive: true})
		cc.token, cc.tokenBlock = v, b.Bytes()
	}
	cc.hbuf.Write(cc.tokenBlock)
}

// syncTableLocked applies the app's SETTINGS_HEADER_TABLE_SIZE to the
// encoder before a header block. Called with the write lock and mu held.
func (cc *h2Conn) syncTableLocked() { cc.peer.SyncTable(cc.henc) }

// encodeTrailer encodes trailer fields into cc.hbuf. Called with the
// write lock held.
func (cc *h2Conn) encodeTrailer(t http.Header) {
	cc.hbuf.Reset()
	for k, vs := range t {
		name := requestNames.Lower(k)
		for _, v := range vs {
			_ = cc.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
		}
	}
}

// requestNames are the field names requests commonly carry.
var requestNames = h2conn.NewLowerNames("Accept", "Accept-Encoding", "Accept-Language", "Authorization",
	"Cache-Control", "Content-Encoding", "Content-Type", "Cookie", "Grpc-Accept-Encoding",
	"Grpc-Encoding", "Grpc-Timeout", "If-Modified-Since", "If-None-Match", "Origin", "Referer",
	"Te", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
	"X-Requested-With", "X-User-Agent", "X-Grpc-Web", "Sec-Websocket-Version",
	"Sec-Websocket-Protocol", headerToken, headerClientCert)

// readLoop reads the app's frames until the connection fails or is
// closed.
func (cc *h2Conn) readLoop() {
	defer close(cc.readDone)
	for {
		f, err := cc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				cc.resetStream(se.StreamID, se.Code, malformed("app HTTP/2 stream: %v", se))
				continue
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			cc.sendGoAway(err)
			cc.fail(fmt.Errorf("app HTTP/2 connection: %w", err))
			return
		}
		if !cc.heard.Load() {
			cc.heard.Store(true)
		}
		if err := cc.handle(f); err != nil {
			cc.sendGoAway(err)
			cc.fail(fmt.Errorf("app HTTP/2 connection: %w", err))
			return
		}
	}
}

// sendGoAway tells the app, with a GOAWAY, the code of the connection error
// err the client found in what it sent (RFC 9113 §5.4.1), as long as the
// write lock is free: the connection is failing, nothing waits for it.
// Other failures (the connection cut, a frame that could not be read)
// send nothing.
func (cc *h2Conn) sendGoAway(err error) {
	code, ok := h2conn.GoAwayCode(err)
	if !ok {
		return
	}
	select {
	case cc.wsem <- struct{}{}:
	default:
		return
	}
	// No stream of the app's was processed: push is disabled.
	_ = cc.fr.WriteGoAway(0, code, nil)
	cc.unlockWrite()
}

// handle processes one frame from the app; an error is a connection
// error.
func (cc *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return cc.handleSettings(f)
	case *http2.MetaHeadersFrame:
		return cc.handleHeaders(f)
	case *http2.DataFrame:
		return cc.handleData(f)
	case *http2.WindowUpdateFrame:
		return cc.handleWindowUpdate(f)
	case *http2.RSTStreamFrame:
		cc.mu.Lock()
		st := cc.streams[f.StreamID]
		switch {
		case st != nil:
			st.rst = true
			if f.ErrCode == http2.ErrCodeRefusedStream {
				st.failLocked(&h2NotProcessedError{"the app refused the stream (REFUSED_STREAM)"})
			} else {
				st.failLocked(&h2StreamError{f.ErrCode})
			}
		case cc.idleLocked(f.StreamID):
			cc.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeProtocol, "app sent RST_STREAM on stream %d, not opened", f.StreamID)
		}
		cc.mu.Unlock()
		return nil
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		data := f.Data
		return cc.write(nil, func() error { return cc.fr.WritePing(true, data) })
	case *http2.GoAwayFrame:
		why := fmt.Sprintf("above the last stream id of the app's GOAWAY (%v)", f.ErrCode)
		if d := f.DebugData(); len(d) > 0 {
			why = fmt.Sprintf("above the last stream id of the app's GOAWAY (%v: %q)", f.ErrCode, trunc(string(d)))
		}
		cc.mu.Lock()
		cc.goAway = true
		for id, st := range cc.streams {
			if id > f.LastStreamID {
				st.failLocked(&h2NotProcessedError{why})
			}
		}
		idle := len(cc.streams) == 0 && cc.reserved == 0
		cc.mu.Unlock()
		if idle {
			cc.close()
		}
		return nil
	case *http2.PushPromiseFrame:
		return h2conn.Errorf(http2.ErrCodeProtocol, "app sent PUSH_PROMISE, which the client disabled")
	}
	return nil
}

// handleSettings applies the app's SETTINGS and acknowledges them.
func (cc *h2Conn) handleSettings(f *http2.SettingsFrame) error {
	cc.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		delta, err := cc.peer.Apply(s)
		if err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingEnablePush:
			// A server may only announce 0 (RFC 9113 §6.5.2).
			if s.Val != 0 {
				return h2conn.Errorf(http2.ErrCodeProtocol, "app announced SETTINGS_ENABLE_PUSH 1")
			}
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = s.Val
		case http2.SettingInitialWindowSize:
			for _, st := range cc.streams {
				if !h2conn.AddWindow(&st.sendWin, delta) {
					return h2conn.Errorf(http2.ErrCodeFlowControl, "app's SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window")
				}
				st.cond.Broadcast()
			}
		case http2.SettingEnableConnectProtocol:
			// Only the first SETTINGS counts (as in Go's client): a
			// tunnel waits for it, and a later one must not change the
			// answer.
			if !cc.settings {
				cc.xconnect = s.Val == 1
			}
		}
		return nil
	})
	if err == nil && !cc.settings {
		if !hasSetting(f, http2.SettingMaxConcurrentStreams) {
			cc.maxStreams = h2DefaultMaxStreams
		}
		cc.settings = true
		close(cc.settingsDone)
		for _, st := range cc.streams {
			st.cond.Broadcast()
		}
	}
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	return cc.write(nil, func() error { return cc.fr.WriteSettingsAck() })
}

func hasSetting(f *http2.SettingsFrame, id http2.SettingID) bool {
	_, ok := f.Value(id)
	return ok
}

// handleHeaders takes a response header, an informational one, or the
// trailers.
func (cc *h2Conn) handleHeaders(f *http2.MetaHeadersFrame) error {
	cc.mu.Lock()
	st := cc.streams[f.StreamID]
	if st == nil || st.remoteEnd || st.rst {
		idle := st == nil && cc.idleLocked(f.StreamID)
		cc.mu.Unlock()
		if idle {
			return h2conn.Errorf(http2.ErrCodeProtocol, "app sent HEADERS on stream %d, not opened", f.StreamID)
		}
		return nil // a stream already ended here
	}
	var serr error
	switch {
	case f.Truncated:
		serr = malformed("response header over %d bytes", maxResponseHeader)
	case st.status == 0:
		code, err := strconv.Atoi(f.PseudoValue("status"))
		switch {
		case err != nil || code < 100 || code > 999:
			serr = malformed("response :status %q", trunc(f.PseudoValue("status")))
		case code < 200:
			// Informational: the final answer follows.
			if st.n1xx++; st.n1xx > max1xx {
				serr = malformed("too many 1xx responses")
			}
		default:
			h, bad := regularFields(f)
			if bad != "" {
				serr = malformed("connection-specific field %q in the response", bad)
				break
			}
			if serr = st.setLength(code, h.Get("Content-Length"), f.StreamEnded()); serr != nil {
				break
			}
			st.status, st.header = code, h
			st.cond.Broadcast()
		}
	case !f.StreamEnded():
		serr = malformed("response trailers without the end of the stream")
	case st.bodyLeft > 0:
		serr = malformed("response body shorter than its content-length")
	default:
		t, bad := regularFields(f)
		if bad != "" {
			serr = malformed("connection-specific field %q in the response trailers", bad)
			break
		}
		st.trailer = t
	}
	if serr == nil && f.StreamEnded() {
		st.remoteEnd = true
		st.cond.Broadcast()
	}
	cc.mu.Unlock()
	if serr != nil {
		cc.resetStream(f.StreamID, http2.ErrCodeProtocol, serr)
	}
	return nil
}

// setLength takes the final response's content-length v (code its
// status; end: the header section ended the stream). A value that is not
// a length makes the response malformed; a body that disagrees with it
// does too (handleData), unless the response has no body whatever it
// says (RFC 9113 §8.1.1).
func (st *h2Stream) setLength(code int, v string, end bool) error {
	if end {
		st.contentLength = 0
		return nil
	}
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return malformed("response content-length %q", trunc(v))
	}
	st.contentLength = n
	if !st.bodyless && code != http.StatusNoContent && code != http.StatusNotModified {
		st.bodyLeft = n
	}
	return nil
}

// regularFields returns f's fields other than the pseudo-header ones, and
// the name of a connection-specific field among them, which makes the
// message malformed (RFC 9113 §8.2.2); "" when there is none. The values
// share one backing array (h2conn.AddValue).
func regularFields(f *http2.MetaHeadersFrame) (http.Header, string) {
	fields := f.RegularFields()
	h := make(http.Header, len(fields))
	vals := make([]string, len(fields))
	bad := ""
	for i, hf := range fields {
		if h2conn.ConnectionSpecific(hf.Name) || hf.Name == "te" {
			bad = hf.Name
		}
		h2conn.AddValue(h, vals, i, responseNames.Canonical(hf.Name), hf.Value)
	}
	return h, bad
}

// responseNames are the field names responses commonly carry.
var responseNames = h2conn.NewCanonicalNames("Content-Type", "Content-Length", "Content-Encoding", "Date", "Server",
	"Cache-Control", "Etag", "Last-Modified", "Location", "Set-Cookie", "Vary", "Expires",
	"Grpc-Status", "Grpc-Message", "Grpc-Encoding", "Grpc-Accept-Encoding",
	"Grpc-Status-Details-Bin", "Trailer")

// idleLocked reports whether stream id was never opened: an id the client
// has not used yet, or an even one (a server's, which only push would
// open). A frame other than PRIORITY on such a stream is a connection
// error (RFC 9113 §5.1). Called with mu held.
func (cc *h2Conn) idleLocked(id uint32) bool { return id%2 == 0 || id >= cc.nextID }

// handleData takes DATA: kept for the stream's reader, within the
// windows.
func (cc *h2Conn) handleData(f *http2.DataFrame) error {
	n := int64(f.Length)
	cc.mu.Lock()
	if !cc.recv.Fits(n) {
		cc.mu.Unlock()
		return h2conn.Errorf(http2.ErrCodeFlowControl, "app sent more than the connection's flow-control window")
	}
	st := cc.streams[f.StreamID]
	data := f.Data()
	var serr error
	code := http2.ErrCodeProtocol
	switch {
	case st == nil || st.rst || st.closed:
		if st == nil && cc.idleLocked(f.StreamID) {
			cc.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeProtocol, "app sent DATA on stream %d, not opened", f.StreamID)
		}
		// A stream that ended here: the data is dropped, its room given
		// back.
		cc.recv.Drop(n)
	case st.status == 0 || st.remoteEnd:
		cc.recv.Drop(n)
		serr = malformed("DATA outside the response body")
	case !st.recv.Fits(n):
		cc.recv.Drop(n)
		serr = errors.New("app sent more than the stream's flow-control window (FLOW_CONTROL_ERROR)")
		code = http2.ErrCodeFlowControl
	case st.bodyLeft >= 0 && (int64(len(data)) > st.bodyLeft || f.StreamEnded() && int64(len(data)) < st.bodyLeft):
		cc.recv.Drop(n)
		serr = malformed("response body of a length other than its content-length %d", st.contentLength)
	default:
		if st.bodyLeft >= 0 {
			st.bodyLeft -= int64(len(data))
		}
		st.recv.Take(&cc.recv, n, data)
		if f.StreamEnded() {
			st.remoteEnd = true
		}
		st.cond.Broadcast()
	}
	inc := cc.recv.Increment()
	cc.mu.Unlock()
	if serr != nil {
		cc.resetStream(f.StreamID, code, serr)
	}
	if inc > 0 {
		return cc.write(nil, func() error { return cc.fr.WriteWindowUpdate(0, uint32(inc)) })
	}
	return nil
}

// handleWindowUpdate gives room to send.
func (cc *h2Conn) handleWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	cc.mu.Lock()
	if f.StreamID == 0 {
		if !h2conn.AddWindow(&cc.sendConn, inc) {
			cc.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeFlowControl, "app's WINDOW_UPDATE overflows the connection window")
		}
		for _, st := range cc.streams {
			st.cond.Broadcast()
		}
		cc.mu.Unlock()
		return nil
	}
	st := cc.streams[f.StreamID]
	if st == nil {
		idle := cc.idleLocked(f.StreamID)
		cc.mu.Unlock()
		if idle {
			return h2conn.Errorf(http2.ErrCodeProtocol, "app sent WINDOW_UPDATE on stream %d, not opened", f.StreamID)
		}
		return nil
	}
	if !h2conn.AddWindow(&st.sendWin, inc) {
		cc.mu.Unlock()
		cc.resetStream(f.StreamID, http2.ErrCodeFlowControl,
			errors.New("app's WINDOW_UPDATE overflows the stream window (FLOW_CONTROL_ERROR)"))
		return nil
	}
	st.cond.Broadcast()
	cc.mu.Unlock()
	return nil
}

// resetStream fails stream id with err and resets it with code.
func (cc *h2Conn) resetStream(id uint32, code http2.ErrCode, err error) {
	cc.mu.Lock()
	st := cc.streams[id]
	send := st != nil && !st.rst
	if st != nil {
		st.rst = true
		st.failLocked(err)
	}
	cc.mu.Unlock()
	if send {
		_ = cc.write(nil, func() error { return cc.fr.WriteRSTStream(id, code) })
	}
}

// h2Stream is one request and its response on an h2Conn. The handler
// reads the response (Read) and closes it (Close); a tunnel's relay also
// writes to it (Write, CloseWrite).
type h2Stream struct {
	cc      *h2Conn
	id      uint32
	ctx     context.Context
	body    io.ReadCloser // the request body, nil when none
	stopCtx func() bool   // unregisters the context's reset
	// ctxReset counts the context's reset until it ran or was unregistered.
	ctxReset sync.WaitGroup
	ownConn  bool      // the connection is the stream's alone: Close closes it
	once     sync.Once // Close
	cond     sync.Cond // L is &cc.mu

	// Protected by cc.mu.
	sendWin int64 // the app's stream window for what is sent
	// recv holds the response body received, and its window.
	recv          h2conn.StreamRecv
	status        int // the final response status; 0 until it arrived
	header        http.Header
	contentLength int64 // -1: unknown
	// bodyLeft is how much of the body the response's content-length
	// still announces, -1 when it announces none (or the response has no
	// body whatever its content-length: bodyless, 204, 304).
	bodyLeft  int64
	bodyless  bool // a HEAD request or a tunnel: content-length says nothing of DATA
	trailer   http.Header
	n1xx      int
	remoteEnd bool // the app ended its side
	localEnd  bool // the request's side ended (END_STREAM sent)
	rst       bool // reset, by the app or here
	closed    bool // Close was called
	err       error
}

// failLocked records err as the stream's failure (the first one counts),
// wakes its waits and stops the body goroutine's read. Called with cc.mu
// held.
func (st *h2Stream) failLocked(err error) {
	if st.err == nil {
		st.err = err
	}
	st.cond.Broadcast()
	if st.body != nil {
		_ = st.body.Close()
	}
}

// cancel resets the stream (RST_STREAM CANCEL) and fails it with err.
func (st *h2Stream) cancel(err error) {
	cc := st.cc
	cc.mu.Lock()
	send := !st.rst && !(st.remoteEnd && st.localEnd) && cc.err == nil
	st.rst = true
	st.failLocked(err)
	cc.mu.Unlock()
	if send {
		_ = cc.write(nil, func() error { return cc.fr.WriteRSTStream(st.id, http2.ErrCodeCancel) })
	}
}

// awaitHeader waits for the final response header, or the stream's
// failure; ctx ending before it resets the stream.
func (st *h2Stream) awaitHeader(ctx context.Context) error {
	if ctx != st.ctx {
		done := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(done)
			st.cancel(context.Cause(ctx))
		})
		defer func() {
			if !stop() {
				<-done // the reset is running
			}
		}()
	}
	cc := st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for st.status == 0 && st.err == nil {
		st.cond.Wait()
	}
	if st.status == 0 {
		return st.err
	}
	return nil
}

// Status is the final response status, Header its fields, once
// awaitHeader returned nil.
func (st *h2Stream) Status() int { return st.status }

// Header returns the response's fields.
func (st *h2Stream) Header() http.Header { return st.header }

// Trailer returns the response's trailers, once Read returned io.EOF.
func (st *h2Stream) Trailer() http.Header {
	st.cc.mu.Lock()
	defer st.cc.mu.Unlock()
	return st.trailer
}

// Read reads the response body, returning io.EOF once the app ended it,
// and gives the app back room in its windows.
func (st *h2Stream) Read(p []byte) (int, error) {
	cc := st.cc
	cc.mu.Lock()
	for st.recv.Len() == 0 && !st.remoteEnd && st.err == nil {
		st.cond.Wait()
	}
	if st.recv.Len() == 0 {
		defer cc.mu.Unlock()
		if st.remoteEnd && !st.closed {
			return 0, io.EOF
		}
		if st.closed {
			return 0, errStreamClosed
		}
		return 0, st.err
	}
	n, sinc := st.recv.Read(&cc.recv, p, !st.remoteEnd && !st.rst)
	cinc := cc.recv.Increment()
	cc.mu.Unlock()
	if sinc > 0 || cinc > 0 {
		// Not bounded by the stream's context: room not given back would
		// be lost to the connection.
		_ = cc.write(nil, func() error { return h2conn.WriteWindowUpdates(cc.fr, st.id, cinc, sinc) })
	}
	return n, nil
}

// Write sends p as DATA frames, each within the app's windows and frame
// size, waiting for the app's first SETTINGS and for room as the app gives
// it.
func (st *h2Stream) Write(p []byte) (int, error) {
	cc := st.cc
	written := 0
	for len(p) > 0 {
		cc.mu.Lock()
		// Before the app's first SETTINGS its stream window may be smaller
		// than HTTP/2's initial one: no DATA goes before them.
		for (!cc.settings || st.sendWin <= 0 || cc.sendConn <= 0) && st.err == nil && !st.localEnd && !st.closed {
			st.cond.Wait()
		}
		switch {
		case st.closed || st.localEnd:
			cc.mu.Unlock()
			return written, net.ErrClosed
		case st.err != nil:
			err := st.err
			cc.mu.Unlock()
			return written, err
		}
		n := min(int64(len(p)), int64(cc.peer.MaxFrame), st.sendWin, cc.sendConn)
		st.sendWin -= n
		cc.sendConn -= n
		cc.mu.Unlock()
		if err := cc.write(st.ctx.Done(), func() error { return cc.fr.WriteData(st.id, false, p[:n]) }); err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// CloseWrite ends the request's side of the stream: END_STREAM, with the
// trailer fields t when there are any.
func (st *h2Stream) CloseWrite() error { return st.endRequest(nil) }

func (st *h2Stream) endRequest(t http.Header) error {
	cc := st.cc
	cc.mu.Lock()
	if st.localEnd || st.closed || st.err != nil {
		cc.mu.Unlock()
		return nil
	}
	st.localEnd = true
	st.cond.Broadcast()
	maxFrame := cc.peer.MaxFrame
	cc.mu.Unlock()
	return cc.write(st.ctx.Done(), func() error {
		if len(t) == 0 {
			return cc.fr.WriteData(st.id, true, nil)
		}
		cc.mu.Lock()
		cc.syncTableLocked()
		cc.mu.Unlock()
		cc.encodeTrailer(t)
		return h2conn.WriteHeaderBlock(cc.fr, st.id, cc.hbuf.Bytes(), true, int(maxFrame))
	})
}

// sendBody is the stream's body goroutine: it sends body as it arrives,
// then ends the stream with the trailers. A failure to read body resets
// the stream. Once the stream failed or closed, body is closed and every
// Write fails, so the goroutine ends when its read of body returns; Close
// does not wait for that read (a client holding its request open for an
// answer must get one), which the body's owner bounds (h2Request.body).
func (st *h2Stream) sendBody(body io.Reader, trailer http.Header) {
	bufp := buffers.Get().(*[bufferSize]byte)
	defer buffers.Put(bufp)
	for {
		n, err := body.Read(bufp[:])
		if n > 0 {
			if _, werr := st.Write(bufp[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			_ = st.endRequest(trailer)
			return
		}
		if err != nil {
			st.cancel(err)
			return
		}
	}
}

// Close ends the stream: reset (RST_STREAM CANCEL) unless it ended both
// ways or was reset, its body closed (which ends the body goroutine), its
// unread data's room given back. A connection of the stream's own is
// closed; a pooled one closes after its last stream if it is closing or
// received GOAWAY.
func (st *h2Stream) Close() error {
	st.once.Do(st.close)
	return nil
}

func (st *h2Stream) close() {
	cc := st.cc
	if st.stopCtx != nil && st.stopCtx() {
		st.ctxReset.Done() // unregistered before it ran
	}
	st.ctxReset.Wait() // the context's reset, if it started, ended
	st.cancel(errStreamClosed)
	cc.mu.Lock()
	st.closed = true
	delete(cc.streams, st.id)
	st.recv.Discard(&cc.recv)
	cinc := int64(0)
	if cc.err == nil {
		cinc = cc.recv.Increment()
	}
	last := len(cc.streams) == 0 && cc.reserved == 0
	closeConn := st.ownConn || last && (cc.goAway || cc.closing)
	cc.mu.Unlock()
	if last {
		cc.lastActive.Store(time.Now().UnixNano())
	}
	if cinc > 0 && !closeConn {
		_ = cc.write(nil, func() error { return cc.fr.WriteWindowUpdate(0, uint32(cinc)) })
	}
	if closeConn {
		cc.close()
		if st.ownConn {
			<-cc.readDone
		}
	}
}
