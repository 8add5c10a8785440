package hostile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is a frame-level HTTP/2 client over one connection (TLS with ALPN
// h2, or cleartext with prior knowledge) for tests that need to send what
// a client library would not, or to see every frame. Its writes are the
// test's; one reader goroutine, which ends when the connection does,
// answers SETTINGS and PING, keeps the flow-control windows both ways
// (it gives back what it received at once, and checks that the server
// stays within the windows it was given), and records each stream's
// answer and every GOAWAY.
type h2Conn struct {
	conn net.Conn

	wmu sync.Mutex // guards fr's writes, enc and hbuf
	fr  *http2.Framer
	enc *hpack.Encoder
	// hbuf is enc's output.
	hbuf bytes.Buffer

	mu   sync.Mutex
	cond *sync.Cond // broadcast on every change below
	// streams are the streams opened with headers, by ID.
	streams map[uint32]*h2Stream
	// sendConn is the connection's send window; sendInitial the server's
	// SETTINGS_INITIAL_WINDOW_SIZE, the send window of a new stream.
	sendConn, sendInitial int64
	// maxFrame is the server's SETTINGS_MAX_FRAME_SIZE.
	maxFrame int
	// settings counts the server's SETTINGS frames (not ACKs); acks its
	// ACKs of ours.
	settings, acks int
	// serverSettings are the values of the server's SETTINGS, the last of each.
	serverSettings map[http2.SettingID]uint32
	// pings holds the data of the PING ACKs received.
	pings [][8]byte
	// goaways are the GOAWAY frames received, in order.
	goaways []h2GoAway
	// recvConn is what the server may still send on the connection
	// before a WINDOW_UPDATE; violation says how it exceeded a window.
	recvConn  int64
	violation string
	// recvInitial is a new stream's receive window (our
	// SETTINGS_INITIAL_WINDOW_SIZE).
	recvInitial int64
	// readErr ends the reader: the connection is closed or broken.
	readErr error
	done    chan struct{} // closed when the reader has ended
}

// h2GoAway is a GOAWAY frame received.
type h2GoAway struct {
	lastStreamID uint32
	code         http2.ErrCode
}

// h2Stream is one stream's answer as the reader collected it.
type h2Stream struct {
	sendWindow int64 // what may still be sent before a WINDOW_UPDATE
	recvWindow int64 // what the server may still send
	status     int
	header     []hpack.HeaderField // the response's fields (final head)
	trailer    []hpack.HeaderField
	body       []byte
	// ended: END_STREAM received; reset: the RST_STREAM's code if reset.
	ended, wasReset bool
	reset           http2.ErrCode
}

// h2InitialWindow is the protocol's initial flow-control window.
const h2InitialWindow = 65535

// h2Settings is what dialH2 announces; zero values are not sent.
type h2Settings struct {
	// initialWindow is SETTINGS_INITIAL_WINDOW_SIZE.
	initialWindow uint32
}

// newH2Conn writes the client preface and SETTINGS on conn and starts the
// reader. Close ends it.
func newH2Conn(conn net.Conn, s h2Settings) (*h2Conn, error) {
	c := &h2Conn{conn: conn, streams: map[uint32]*h2Stream{}, serverSettings: map[http2.SettingID]uint32{},
		sendConn: h2InitialWindow, sendInitial: h2InitialWindow,
		maxFrame: 16 << 10, recvConn: h2InitialWindow, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	c.fr = http2.NewFramer(conn, conn)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return nil, fmt.Errorf("preface: %w", err)
	}
	var settings []http2.Setting
	if s.initialWindow != 0 {
		settings = append(settings, http2.Setting{ID: http2.SettingInitialWindowSize, Val: s.initialWindow})
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	c.recvInitial = h2InitialWindow
	if s.initialWindow != 0 {
		c.recvInitial = int64(s.initialWindow)
	}
	go c.read()
	return c, nil
}

// Close closes the connection and waits for the reader to end.
func (c *h2Conn) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// read is the reader goroutine.
func (c *h2Conn) read() {
	defer close(c.done)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		var reply func() error // a frame to write, outside c.mu
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				c.acks++
				break
			}
			c.settings++
			_ = f.ForeachSetting(func(s http2.Setting) error {
				c.serverSettings[s.ID] = s.Val
				switch s.ID {
				case http2.SettingInitialWindowSize:
					for _, st := range c.streams {
						st.sendWindow += int64(s.Val) - c.sendInitial
					}
					c.sendInitial = int64(s.Val)
				case http2.SettingMaxFrameSize:
					c.maxFrame = int(s.Val)
				}
				return nil
			})
			reply = c.fr.WriteSettingsAck
		case *http2.PingFrame:
			if f.IsAck() {
				c.pings = append(c.pings, f.Data)
				break
			}
			data := f.Data
			reply = func() error { return c.fr.WritePing(true, data) }
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.sendConn += int64(f.Increment)
			} else if st := c.streams[f.StreamID]; st != nil {
				st.sendWindow += int64(f.Increment)
			}
		case *http2.GoAwayFrame:
			c.goaways = append(c.goaways, h2GoAway{lastStreamID: f.LastStreamID, code: f.ErrCode})
		case *http2.RSTStreamFrame:
			if st := c.streams[f.StreamID]; st != nil {
				st.wasReset, st.reset = true, f.ErrCode
			}
		case *http2.MetaHeadersFrame:
			st := c.streams[f.StreamID]
			if st == nil {
				break
			}
			if s := f.PseudoValue("status"); s != "" {
				// A 1xx head is followed by the final one.
				if n, _ := strconv.Atoi(s); n >= 200 {
					st.status, st.header = n, f.RegularFields()
				}
			} else {
				st.trailer = f.RegularFields()
			}
			st.ended = st.ended || f.StreamEnded()
		case *http2.DataFrame:
			st := c.streams[f.StreamID]
			n := int64(f.Length)
			c.recvConn -= n
			if c.recvConn < 0 && c.violation == "" {
				c.violation = fmt.Sprintf("the server sent %d bytes past the connection's window", -c.recvConn)
			}
			open := false
			if st != nil {
				st.recvWindow -= n
				if st.recvWindow < 0 && c.violation == "" {
					c.violation = fmt.Sprintf("the server sent %d bytes past stream %d's window", -st.recvWindow, f.StreamID)
				}
				st.body = append(st.body, f.Data()...)
				st.ended = st.ended || f.StreamEnded()
				open = !st.ended
			}
			if n > 0 {
				// Give it all back at once: the windows stay open, and
				// the checks above hold the server to them.
				c.recvConn += n
				if open {
					st.recvWindow += n
				}
				id := f.StreamID
				reply = func() error {
					if err := c.fr.WriteWindowUpdate(0, uint32(n)); err != nil || !open {
						return err
					}
					return c.fr.WriteWindowUpdate(id, uint32(n))
				}
			}
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		if reply != nil {
			c.wmu.Lock()
			// A failed write shows as a failed read next.
			_ = reply()
			c.wmu.Unlock()
		}
	}
}

// headers opens stream id (or sends its trailers) with fields, in as many
// CONTINUATION frames as the server's frame size needs.
func (c *h2Conn) headers(id uint32, fields [][2]string, endStream bool) error {
	c.mu.Lock()
	if c.streams[id] == nil {
		c.streams[id] = &h2Stream{sendWindow: c.sendInitial, recvWindow: c.recvInitial}
	}
	maxFrame := c.maxFrame
	c.mu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hbuf.Reset()
	for _, f := range fields {
		if err := c.enc.WriteField(hpack.HeaderField{Name: strings.ToLower(f[0]), Value: f[1]}); err != nil {
			return err
		}
	}
	block := c.hbuf.Bytes()
	first := block[:min(len(block), maxFrame)]
	block = block[len(first):]
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0}); err != nil {
		return fmt.Errorf("HEADERS on stream %d: %w", id, err)
	}
	for len(block) > 0 {
		frag := block[:min(len(block), maxFrame)]
		block = block[len(frag):]
		if err := c.fr.WriteContinuation(id, len(block) == 0, frag); err != nil {
			return fmt.Errorf("CONTINUATION on stream %d: %w", id, err)
		}
	}
	return nil
}

// data sends p on stream id within the server's flow-control windows,
// waiting for WINDOW_UPDATEs as needed, ending the stream if endStream.
func (c *h2Conn) data(ctx context.Context, id uint32, p []byte, endStream bool) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cond.Broadcast()
	})
	defer stop()
	for first := true; first || len(p) > 0; first = false {
		c.mu.Lock()
		st := c.streams[id]
		var n int
		for {
			if err := c.failed(ctx, id); err != nil {
				c.mu.Unlock()
				return err
			}
			n = int(min(int64(len(p)), int64(c.maxFrame), c.sendConn, st.sendWindow))
			if n > 0 || len(p) == 0 {
				break
			}
			c.cond.Wait()
		}
		c.sendConn -= int64(n)
		st.sendWindow -= int64(n)
		c.mu.Unlock()
		c.wmu.Lock()
		err := c.fr.WriteData(id, endStream && n == len(p), p[:n])
		c.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("DATA on stream %d: %w", id, err)
		}
		p = p[n:]
	}
	return nil
}

// failed returns why nothing more can happen on stream id: ctx ended, the
// connection or the stream is gone. c.mu is held.
func (c *h2Conn) failed(ctx context.Context, id uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.readErr != nil {
		return fmt.Errorf("connection ended: %w", c.readErr)
	}
	if st := c.streams[id]; st != nil && st.wasReset {
		return fmt.Errorf("stream %d reset: %v", id, st.reset)
	}
	return nil
}

// write sends one frame of the test's own making.
func (c *h2Conn) write(f func(fr *http2.Framer) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return f(c.fr)
}

// waitFor waits until cond (called with c.mu held) holds, the connection
// ends (cond is asked once more), or ctx ends.
func (c *h2Conn) waitFor(ctx context.Context, what string, cond func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cond.Broadcast()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !cond() {
		if c.readErr != nil {
			return fmt.Errorf("connection ended waiting for %s: %w", what, c.readErr)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		c.cond.Wait()
	}
	return nil
}

// response waits until stream id ends (END_STREAM or RST_STREAM) and
// returns a copy of what it received.
func (c *h2Conn) response(ctx context.Context, id uint32) (h2Stream, error) {
	err := c.waitFor(ctx, fmt.Sprintf("the end of stream %d", id), func() bool {
		st := c.streams[id]
		return st.ended || st.wasReset
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.streams[id], err
}

// closed waits until the server has closed the connection and returns
// the read error that showed it (io.EOF, a reset), or ctx's error.
func (c *h2Conn) closed(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
	defer stop()
	<-c.done
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("connection still open: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr == nil || errors.Is(c.readErr, io.EOF) || isReset(c.readErr) {
		return nil
	}
	return c.readErr
}

// state runs f with c.mu held, to read what the reader recorded.
func (c *h2Conn) state(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// field returns the value of the field name in fields ("" if none).
func field(fields []hpack.HeaderField, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}
