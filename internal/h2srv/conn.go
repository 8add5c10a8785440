// Package h2srv is the HTTP/2 server of the front door (RFC 9113), on
// x/net/http2's Framer and hpack.
//
// A connection has one read loop goroutine, which reads the client's
// frames (through a buffer it holds only while the buffer has bytes, see
// connReader), keeps the connection's and its streams' state
// and answers the control frames (SETTINGS, PING) itself, and one
// goroutine per stream, which runs the Handler. A handler writes its
// response's frames to the connection itself, under the connection's
// write lock (the HPACK encoder is used under it too): there is no serve
// loop to hand frames to and no goroutine per write. The connection the
// caller gives is expected to gather writes into few system calls (the
// front door's batchconn), so that a response's HEADERS, DATA and
// trailers leave together.
//
// The package knows nothing of sites or apps: a Stream is a request (its
// head, its body as an io.Reader, its context) and an http.ResponseWriter.
//
// Requests are checked as RFC 9113 §8 asks before a handler sees them:
// pseudo-header fields, connection-specific fields, TE, field names,
// :authority against Host, content-length against the DATA received. Flow
// control is kept both ways. The bounds against a hostile peer: streams in
// flight (MAX_CONCURRENT_STREAMS, and the handlers still running for
// streams the client reset: rapid reset), the header list size (which the
// Framer enforces while it assembles CONTINUATION frames), and the control
// frames a client can make the server answer (they are answered from the
// read loop, which reads nothing more until the answer is written, so
// nothing queues).
package h2srv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/h2conn"
)

const (
	// prefaceTimeout bounds the wait for the client's connection preface
	// and first SETTINGS when the connection has no idle timeout shorter.
	prefaceTimeout = 10 * time.Second
	// shutdownGrace bounds the wait for the answer to a shutdown's PING.
	shutdownGrace = time.Second
	// calmFactor bounds the streams a connection may have refused because
	// its handlers in flight (those of streams the client reset included)
	// reached MaxConcurrentStreams, while they stayed there: beyond
	// calmFactor times that many, the connection is closed with
	// ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487). The count starts
	// again once a handler returns below the bound, so a busy client that
	// now and then opens a stream before the handler of its last one
	// returned is not closed at last.
	calmFactor = 4
)

// Config are a connection's settings and hooks.
type Config struct {
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS; it also
	// bounds the handlers in flight.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is the largest frame read (SETTINGS_MAX_FRAME_SIZE).
	MaxReadFrameSize uint32
	// StreamWindow and ConnWindow are the receive windows: the request
	// data a stream, and all streams of the connection, may have buffered.
	StreamWindow, ConnWindow int32
	// MaxHeaderListSize is SETTINGS_MAX_HEADER_LIST_SIZE: a request whose
	// header list is larger is answered 431 without a handler.
	MaxHeaderListSize uint32
	// IdleTimeout closes a connection with no stream open for that long
	// (GOAWAY, then the close); 0: never.
	IdleTimeout time.Duration
	// SendTimeout closes a connection whose writes make no progress for
	// that long; 0: none.
	SendTimeout time.Duration
	// OnIdle, when set, is called with true when the connection gets to
	// have no stream open (and at its start), false when a stream opens.
	// Calls are serialised.
	OnIdle func(idle bool)
	// Log receives the connection's debug messages.
	Log *slog.Logger
	// Socket, when set, is the connection's socket (a cleartext one):
	// frames are then read from it directly, through a buffer held only
	// while it has bytes not yet read, so that a connection waiting for
	// its next frame holds none. Buffered are the bytes read from the
	// connection before it was given (the preface, and what came with
	// it), read before the socket's. Without Socket, frames are read from
	// the connection itself, each with two reads and no buffer of the
	// server's: for a connection that buffers what it reads (TLS), or
	// one with bytes of its own to give first; Buffered is then unused.
	Socket   syscall.RawConn
	Buffered []byte
}

// Handler serves one stream, on a goroutine of the stream's: it reads the
// request from st and writes the response to st. The stream ends when it
// returns.
type Handler func(st *Stream)

// shutdownPing is the data of a shutdown's PING.
var shutdownPing = [8]byte{'s', 'h', 'u', 't', 'd', 'o', 'w', 'n'}

var (
	// errConnClosed is the failure of the streams of a closed connection.
	errConnClosed = errors.New("HTTP/2 connection closed")
	// errStreamReset is the failure of a stream the client reset.
	errStreamReset = errors.New("HTTP/2 stream reset by the client")
)

// Conn is one client connection.
type Conn struct {
	nc  net.Conn
	cfg Config
	h   Handler
	rd  *connReader // what fr reads from; used by the read loop only
	fr  *http2.Framer
	log *slog.Logger

	// wmu is the write lock: one writer of frames at a time. henc and
	// hbuf encode header blocks under it.
	wmu  sync.Mutex
	henc *hpack.Encoder
	hbuf bytes.Buffer

	ctx    context.Context // the streams' parent; cancelled when the connection ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // the streams' goroutines
	idle   *time.Timer    // IdleTimeout's, nil without one

	mu       sync.Mutex // protects the fields below; the streams' conds wait on it
	streams  map[uint32]*Stream
	maxID    uint32 // the largest stream id the client opened
	open     int    // streams open on the protocol's count (not closed, not reset)
	running  int    // streams whose handler runs
	refused  int    // streams refused since running reached MaxConcurrentStreams
	sendConn int64  // the client's connection window for what is sent
	// peer holds the client's SETTINGS, recv the accounting of the
	// connection's receive window.
	peer     h2conn.Peer
	recv     h2conn.ConnRecv
	shutdown bool        // Shutdown began
	started  bool        // the server's SETTINGS went out: a shutdown may send its GOAWAY
	grace    *time.Timer // runs finalGoAway, once Shutdown began
	goAway   bool        // the final GOAWAY was sent: no new stream; close after the last one
	peerGone bool        // the client sent GOAWAY: wait for it to close first (closeDrained)
	lastID   uint32
	closed   bool
	isIdle   bool // OnIdle was last told true
	// recent are the last streams that ended (RFC 9113 §5.1 "closed"),
	// for the error a HEADERS or DATA frame on one of them is.
	recent  [64]endedStream
	nRecent int
}

// endedStream is a stream that ended: reset, or ended both ways.
type endedStream struct {
	id    uint32
	reset bool // reset, by the client or here
	// here: the server reset it (its RST_STREAM went out, or it was
	// refused), so the DATA the client sent before it saw the RST_STREAM
	// are ignored (RFC 9113 §5.4.2), not answered with another one.
	here bool
}

// endedLocked records that a stream ended. Called with mu held.
func (c *Conn) endedLocked(e endedStream) {
	c.recent[c.nRecent%len(c.recent)] = e
	c.nRecent++
}

// recentLocked returns the record of stream id, ok if it ended lately.
// Called with mu held.
func (c *Conn) recentLocked(id uint32) (e endedStream, ok bool) {
	for _, r := range c.recent[:min(c.nRecent, len(c.recent))] {
		if r.id == id {
			return r, true
		}
	}
	return endedStream{}, false
}

// refuse resets stream id, which the client just opened, without serving
// it, and records it reset here.
func (c *Conn) refuse(id uint32, code http2.ErrCode, why error) error {
	c.mu.Lock()
	c.openedLocked(id)
	c.endedLocked(endedStream{id: id, reset: true, here: true})
	c.mu.Unlock()
	return c.streamError(id, code, why)
}

// NewConn returns a connection that serves nc with h once Serve runs. nc
// is the client's connection (TLS or not), with any bytes already read
// from it put back in front (the preface's).
func NewConn(nc net.Conn, cfg Config, h Handler) *Conn {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{
		nc: nc, cfg: cfg, h: h, log: cfg.Log,
		streams: map[uint32]*Stream{}, sendConn: h2conn.InitialWindow, peer: h2conn.NewPeer(),
		recv: h2conn.NewConnRecv(int64(cfg.ConnWindow)),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.henc = hpack.NewEncoder(&c.hbuf)
	var pre []byte
	if cfg.Socket != nil {
		pre = cfg.Buffered
	}
	c.rd = newConnReader(nc, cfg.Socket, pre)
	c.fr = h2conn.NewFramer(nc, c.rd, cfg.MaxReadFrameSize, cfg.MaxHeaderListSize)
	return c
}

// Serve reads and serves the connection until it ends, then waits for
// its streams' handlers to return and closes it.
func (c *Conn) Serve() {
	defer func() {
		c.rd.release()
		c.close()
		c.wg.Wait()
	}()
	if err := c.start(); err != nil {
		c.log.Debug("HTTP/2 connection start", "remote", c.nc.RemoteAddr().String(), "err", err)
		c.sendGoAway(err)
		return
	}
	c.setIdle(true)
	err := c.readLoop()
	if err != nil && !errors.Is(err, errConnClosed) {
		c.log.Debug("HTTP/2 connection", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
	c.sendGoAway(err)
}

// start reads the client's preface and sends the server's SETTINGS and
// connection window.
func (c *Conn) start() error {
	wait := prefaceTimeout
	if c.cfg.IdleTimeout > 0 {
		wait = min(wait, c.cfg.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	var pre [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.rd, pre[:]); err != nil {
		return fmt.Errorf("read the client preface: %w", err)
	}
	if string(pre[:]) != http2.ClientPreface {
		return h2conn.Errorf(http2.ErrCodeProtocol, "bad client preface")
	}
	err := c.write(func() error {
		err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.cfg.MaxConcurrentStreams},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.cfg.MaxReadFrameSize},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.cfg.StreamWindow)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.cfg.MaxHeaderListSize},
			http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
		if err == nil && c.cfg.ConnWindow > h2conn.InitialWindow {
			err = c.fr.WriteWindowUpdate(0, uint32(c.cfg.ConnWindow-h2conn.InitialWindow))
		}
		return err
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.started = true
	pending := c.shutdown
	c.mu.Unlock()
	if pending {
		c.beginShutdown() // Shutdown was called before the SETTINGS went out
	}
	// The client's first frame must be SETTINGS (RFC 9113 §3.4).
	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return h2conn.Errorf(http2.ErrCodeProtocol, "first frame is not SETTINGS")
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	return c.handleSettings(sf)
}

// setIdle tells OnIdle about a change, and arms or stops the idle timer.
// Called with mu held, or before the read loop starts.
func (c *Conn) setIdle(idle bool) {
	if idle == c.isIdle || c.closed {
		return
	}
	c.isIdle = idle
	if c.cfg.OnIdle != nil {
		c.cfg.OnIdle(idle)
	}
	if c.cfg.IdleTimeout <= 0 {
		return
	}
	switch {
	case !idle:
		if c.idle != nil {
			c.idle.Stop()
		}
	case c.idle == nil:
		c.idle = time.AfterFunc(c.cfg.IdleTimeout, c.idleExpired)
	default:
		c.idle.Reset(c.cfg.IdleTimeout)
	}
}

// idleExpired closes the connection if it is still idle.
func (c *Conn) idleExpired() {
	c.mu.Lock()
	idle := c.isIdle && !c.closed
	c.mu.Unlock()
	if idle {
		c.Shutdown()
	}
}

// write runs fn (frame writes) with the write lock held, under the send
// timeout. A write failure closes the connection.
func (c *Conn) write(fn func() error) error {
	c.wmu.Lock()
	if c.cfg.SendTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.SendTimeout))
	}
	err := fn()
	c.wmu.Unlock()
	if err != nil {
		var se stateError
		if errors.As(err, &se) {
			return err
		}
		if isTimeout(err) {
			c.log.Info("send timeout: the client took no HTTP/2 frames in time; connection closed",
				"remote", c.nc.RemoteAddr().String(), "timeout", c.cfg.SendTimeout)
		}
		c.close()
		return fmt.Errorf("HTTP/2 write: %w", err)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Shutdown closes the connection gracefully, in two steps (RFC 9113
// §6.8): a GOAWAY with the largest stream id and a PING tell the client
// to open no more streams; once the PING's answer came (a round trip,
// after which no stream the client sent before it saw the GOAWAY is
// still on its way), or after shutdownGrace, a GOAWAY with the last
// stream id refuses any later one, and the connection closes once its
// last stream ended. Before the server's SETTINGS went out (its first
// frame, RFC 9113 §3.4), the GOAWAY waits for them, and a client whose
// preface has not come after shutdownGrace is closed.
func (c *Conn) Shutdown() {
	c.mu.Lock()
	if c.shutdown || c.closed {
		c.mu.Unlock()
		return
	}
	c.shutdown = true
	c.grace = time.AfterFunc(shutdownGrace, c.finalGoAway)
	started := c.started
	c.mu.Unlock()
	if started {
		c.beginShutdown()
	}
}

// beginShutdown sends the first GOAWAY and the PING of a shutdown.
func (c *Conn) beginShutdown() {
	_ = c.write(func() error {
		if err := c.fr.WriteGoAway(h2conn.MaxStreamID, http2.ErrCodeNo, nil); err != nil {
			return err
		}
		return c.fr.WritePing(false, shutdownPing)
	})
}

// clientGoAway shuts the connection down after the client's GOAWAY: no
// PING round trip is needed, as the client opens no more streams, so the
// final GOAWAY (the last stream id the client opened) goes out at once.
func (c *Conn) clientGoAway() {
	c.mu.Lock()
	c.shutdown = true // a later Shutdown sends no first GOAWAY after the final one
	c.peerGone = true
	c.mu.Unlock()
	c.finalGoAway()
}

// closeDrained closes the connection once a shutdown's last stream
// ended. After the client's GOAWAY it leaves the client shutdownGrace
// to close first, as Go's server does, reading what it still sends:
// closing a socket with bytes unread resets the connection (TCP RST),
// which may destroy the final GOAWAY before the client reads it.
func (c *Conn) closeDrained() {
	c.mu.Lock()
	linger := c.peerGone && !c.closed
	if linger {
		if c.grace != nil {
			c.grace.Stop()
		}
		c.grace = time.AfterFunc(shutdownGrace, c.close)
	}
	c.mu.Unlock()
	if !linger {
		c.close()
	}
}

// finalGoAway sends the GOAWAY with the last stream id of a shutdown,
// and closes the connection if no stream is left.
func (c *Conn) finalGoAway() {
	c.mu.Lock()
	if c.goAway || c.closed {
		c.mu.Unlock()
		return
	}
	if !c.started {
		c.mu.Unlock()
		c.close() // no preface yet: no stream either
		return
	}
	c.goAway = true
	c.lastID = c.maxID
	last := c.lastID
	done := c.running == 0
	c.mu.Unlock()
	_ = c.write(func() error { return c.fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
	if done {
		c.closeDrained()
	}
}

// Close closes the connection now; its streams' contexts end.
func (c *Conn) Close() { c.close() }

// close closes the connection and fails its streams, once.
func (c *Conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for _, st := range c.streams {
		st.failLocked(errConnClosed)
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.grace != nil {
		c.grace.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	_ = c.nc.Close()
}

// sendGoAway tells the client the code of the connection error err, if it
// is one (RFC 9113 §5.4.1). Other failures (the connection cut, a timeout)
// send nothing.
func (c *Conn) sendGoAway(err error) {
	code, ok := h2conn.GoAwayCode(err)
	if !ok {
		return
	}
	c.mu.Lock()
	last := c.maxID
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	_ = c.write(func() error { return c.fr.WriteGoAway(last, code, nil) })
}

// readLoop reads and handles the client's frames until the connection
// fails or closes.
func (c *Conn) readLoop() error {
	for {
		// The header is read apart from the payload so that a stream
		// error of the Framer's, which does not say of which frame, is
		// known to be a HEADERS frame's or another's.
		fh, err := c.fr.ReadFrameHeader()
		var f http2.Frame
		switch {
		case err == nil && fh.Type == http2.FrameData:
			if err = c.readData(fh); err == nil {
				continue
			}
		case err == nil:
			f, err = c.fr.ReadFrameForHeader(fh)
		}
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				if err := c.framerStreamError(fh.Type, se); err != nil {
					return err
				}
				continue
			}
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return errConnClosed
			}
			return err
		}
		if err := c.handle(f); err != nil {
			return err
		}
	}
}

// readData reads the payload of the DATA frame with header fh, as the
// Framer would, and handles it. It is read here, into a pooled buffer,
// because the Framer reads every payload into a buffer of its own that
// it keeps, as large as the largest frame it read (16 KiB after an
// upload), for the connection's life.
func (c *Conn) readData(fh http2.FrameHeader) error {
	b := dataBuffers.Get().(*[frameHeaderLen + h2conn.DefaultMaxFrameSize]byte)
	defer dataBuffers.Put(b)
	var payload []byte
	if int(fh.Length) <= len(b) {
		payload = b[:fh.Length]
	} else {
		payload = make([]byte, fh.Length) // MaxReadFrameSize is above the default
	}
	if _, err := io.ReadFull(c.rd, payload); err != nil {
		return err
	}
	if fh.StreamID == 0 {
		return h2conn.Errorf(http2.ErrCodeProtocol, "DATA frame with stream ID 0")
	}
	if fh.Flags.Has(http2.FlagDataPadded) {
		// The pad length, then the data, then that many bytes of padding
		// (RFC 9113 §6.1).
		if len(payload) == 0 || int(payload[0]) >= len(payload) {
			return h2conn.Errorf(http2.ErrCodeProtocol, "DATA frame with a pad length over its payload")
		}
		payload = payload[1 : len(payload)-int(payload[0])]
	}
	return c.handleData(fh, payload)
}

// framerStreamError handles a stream error the Framer found in a frame
// of type t: a malformed HEADERS frame, which opens its stream even so, or
// a WINDOW_UPDATE with an increment of 0. Any frame but HEADERS and
// PRIORITY on an idle stream is a connection error PROTOCOL_ERROR (RFC
// 9113 §5.1), and it leaves the stream idle; on a stream the client opened
// it resets that stream.
func (c *Conn) framerStreamError(t http2.FrameType, se http2.StreamError) error {
	c.mu.Lock()
	if t == http2.FrameHeaders {
		c.openedLocked(se.StreamID)
	} else if c.idleLocked(se.StreamID) {
		c.mu.Unlock()
		return h2conn.Errorf(http2.ErrCodeProtocol, "malformed %v frame on idle stream %d", t, se.StreamID)
	}
	c.mu.Unlock()
	return c.streamError(se.StreamID, se.Code, se)
}

// openedLocked records that the client opened stream id, if it is a
// stream id it had not used yet. Called with mu held.
func (c *Conn) openedLocked(id uint32) {
	if id > c.maxID && id%2 == 1 {
		c.maxID = id
	}
}

// streamError resets stream id with code, for a malformed request or a
// frame the stream's state does not allow. A stream the client had not
// opened stays idle: a PRIORITY frame does not open it (RFC 9113 §5.1).
func (c *Conn) streamError(id uint32, code http2.ErrCode, why error) error {
	c.mu.Lock()
	st := c.streams[id]
	if st != nil {
		c.resetLocked(st, why)
	}
	c.mu.Unlock()
	c.log.Debug("HTTP/2 stream error", "remote", c.nc.RemoteAddr().String(), "stream", id, "code", code.String(), "err", why)
	return c.write(func() error { return c.fr.WriteRSTStream(id, code) })
}

// resetLocked marks st reset and no longer open: its context ends, its
// body and writes fail. Called with mu held.
func (c *Conn) resetLocked(st *Stream, why error) {
	if st.rst {
		return
	}
	st.rst = true
	if !(st.remoteEnd && st.localEnd) {
		c.open-- // not counted any more once it ended both ways
	}
	st.failLocked(why)
	c.maybeIdleLocked()
}

// maybeIdleLocked reports the connection idle when no stream is open and
// no handler runs. Called with mu held.
func (c *Conn) maybeIdleLocked() {
	if c.open == 0 && c.running == 0 {
		c.setIdle(true)
	}
}

// handle processes one frame; an error is a connection error.
func (c *Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return c.handleSettings(f)
	case *http2.MetaHeadersFrame:
		return c.handleHeaders(f)
	case *http2.WindowUpdateFrame:
		return c.handleWindowUpdate(f)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		if c.idleLocked(f.StreamID) {
			c.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeProtocol, "RST_STREAM on idle stream %d", f.StreamID)
		}
		if st := c.streams[f.StreamID]; st != nil {
			st.clientRst = true
			c.resetLocked(st, errStreamReset)
		}
		c.mu.Unlock()
		return nil
	case *http2.PingFrame:
		if f.IsAck() {
			if f.Data == shutdownPing {
				c.finalGoAway()
			}
			return nil
		}
		data := f.Data
		return c.write(func() error { return c.fr.WritePing(true, data) })
	case *http2.PriorityFrame:
		if f.StreamID == f.StreamDep {
			return c.streamError(f.StreamID, http2.ErrCodeProtocol, errors.New("stream depends on itself"))
		}
		return nil
	case *http2.GoAwayFrame:
		// The client opens no more streams (RFC 9113 §6.8): those open
		// are served, and the connection closes after the last one, as
		// a shutdown ends it (Go's server does the same).
		c.clientGoAway()
		return nil
	case *http2.PushPromiseFrame:
		return h2conn.Errorf(http2.ErrCodeProtocol, "client sent PUSH_PROMISE")
	}
	return nil // unknown frame types are ignored
}

// idleLocked reports whether stream id was never opened: one the client
// has not used yet, or an even one (the server's, which it never opens).
func (c *Conn) idleLocked(id uint32) bool { return id%2 == 0 || id > c.maxID }

// handleSettings applies the client's SETTINGS, in order, and
// acknowledges them.
func (c *Conn) handleSettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		delta, err := c.peer.Apply(s)
		if err != nil || delta == 0 {
			return err
		}
		for _, st := range c.streams {
			if !h2conn.AddWindow(&st.sendWin, delta) {
				return h2conn.Errorf(http2.ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window")
			}
			st.cond.Broadcast()
		}
		return nil
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.write(func() error { return c.fr.WriteSettingsAck() })
}

// handleData takes the data of a DATA frame with header f (its padding
// cut off): kept for the stream's reader, within the windows.
func (c *Conn) handleData(f http2.FrameHeader, data []byte) error {
	n := int64(f.Length)
	ended := f.Flags.Has(http2.FlagDataEndStream)
	c.mu.Lock()
	if !c.recv.Fits(n) {
		c.mu.Unlock()
		return h2conn.Errorf(http2.ErrCodeFlowControl, "DATA beyond the connection's flow-control window")
	}
	st := c.streams[f.StreamID]
	var serr error
	code := http2.ErrCodeStreamClosed
	switch {
	case st == nil:
		if c.idleLocked(f.StreamID) {
			c.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeProtocol, "DATA on idle stream %d", f.StreamID)
		}
		c.recv.Drop(n)
		if e, _ := c.recentLocked(f.StreamID); !e.here {
			serr = errors.New("DATA on a closed stream")
		} // else reset here: dropped, its room given back
	case st.remoteEnd || st.clientRst:
		c.recv.Drop(n)
		serr = errors.New("DATA after the end of the request")
	case st.rst:
		c.recv.Drop(n) // reset here: dropped, its room given back
	case !st.recv.Fits(n):
		c.recv.Drop(n)
		serr, code = errors.New("DATA beyond the stream's flow-control window"), http2.ErrCodeFlowControl
	case st.bodyLeft >= 0 && (int64(len(data)) > st.bodyLeft || ended && int64(len(data)) < st.bodyLeft):
		c.recv.Drop(n)
		serr, code = errors.New("request body of a length other than its content-length"), http2.ErrCodeProtocol
	default:
		if st.bodyLeft >= 0 {
			st.bodyLeft -= int64(len(data))
		}
		st.recv.Take(&c.recv, n, data)
		if ended {
			c.endRemoteLocked(st)
		}
		st.cond.Broadcast()
	}
	inc := c.recv.Increment()
	c.mu.Unlock()
	if serr != nil {
		if err := c.streamError(f.StreamID, code, serr); err != nil {
			return err
		}
	}
	if inc > 0 {
		return c.write(func() error { return c.fr.WriteWindowUpdate(0, uint32(inc)) })
	}
	return nil
}

// endRemoteLocked records the end of the client's side of st. A stream
// ended both ways is no longer open. Called with mu held.
func (c *Conn) endRemoteLocked(st *Stream) {
	st.remoteEnd = true
	st.cond.Broadcast()
	if st.localEnd && !st.rst {
		c.open--
		c.maybeIdleLocked()
	}
}

// handleWindowUpdate gives room to send.
func (c *Conn) handleWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	if f.StreamID == 0 {
		if !h2conn.AddWindow(&c.sendConn, inc) {
			c.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeFlowControl, "WINDOW_UPDATE overflows the connection window")
		}
		for _, st := range c.streams {
			st.cond.Broadcast()
		}
		c.mu.Unlock()
		return nil
	}
	if c.idleLocked(f.StreamID) {
		c.mu.Unlock()
		return h2conn.Errorf(http2.ErrCodeProtocol, "WINDOW_UPDATE on idle stream %d", f.StreamID)
	}
	st := c.streams[f.StreamID]
	if st == nil || st.rst {
		c.mu.Unlock()
		return nil
	}
	if !h2conn.AddWindow(&st.sendWin, inc) {
		c.mu.Unlock()
		return c.streamError(f.StreamID, http2.ErrCodeFlowControl, errors.New("WINDOW_UPDATE overflows the stream window"))
	}
	st.cond.Broadcast()
	c.mu.Unlock()
	return nil
}

// syncTableLocked applies the client's SETTINGS_HEADER_TABLE_SIZE to the
// encoder before a header block. Called with the write lock and mu held.
func (c *Conn) syncTableLocked() { c.peer.SyncTable(c.henc) }

// writeHeaderBlock writes c.hbuf as HEADERS and as many CONTINUATION
// frames as it needs. Called with the write lock held.
func (c *Conn) writeHeaderBlock(id uint32, endStream bool) error {
	c.mu.Lock()
	maxFrame := int(c.peer.MaxFrame)
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return stateError{errConnClosed}
	}
	return h2conn.WriteHeaderBlock(c.fr, id, c.hbuf.Bytes(), endStream, maxFrame)
}
