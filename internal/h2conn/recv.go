package h2conn

// ConnRecv is the accounting of a connection's receive window: the data
// received and held for the streams' readers, and the data read or
// dropped that was not given back to the peer yet. Room goes back to the
// peer once a quarter of the window was read or dropped (Increment), so
// that a WINDOW_UPDATE covers many frames. It is guarded by the
// connection's mutex.
type ConnRecv struct {
	window int64 // the connection's receive window, as announced
	held   int64 // received and held for the streams' readers
	free   int64 // read or dropped, not yet given back to the peer
}

// NewConnRecv returns the accounting of a receive window of window bytes.
func NewConnRecv(window int64) ConnRecv { return ConnRecv{window: window} }

// Fits reports whether a DATA frame of length n (its padding included)
// fits in the window left; one that does not is a connection error
// (FLOW_CONTROL_ERROR).
func (c *ConnRecv) Fits(n int64) bool { return n <= c.window-c.held-c.free }

// Drop counts n bytes received and dropped (DATA of a stream that ended
// or failed): their room is to go back to the peer.
func (c *ConnRecv) Drop(n int64) { c.free += n }

// Increment returns the room to give back to the peer's view of the
// connection window, 0 when it is not yet a quarter of the window; what
// it returns counts as given back.
func (c *ConnRecv) Increment() int64 {
	if c.free < c.window/4 {
		return 0
	}
	inc := c.free
	c.free = 0
	return inc
}

// StreamRecv is a stream's receive side: the window left to the peer, the
// data received and not read yet, and the room read or dropped that was
// not given back. It is guarded by the connection's mutex.
type StreamRecv struct {
	window int64  // the stream's receive window, as announced
	left   int64  // the window left to the peer
	free   int64  // read or dropped, not yet given back to the peer
	buf    []byte // received, not read yet
	spare  []byte // buf's backing array, reused once buf is empty
}

// NewStreamRecv returns the receive side of a stream whose receive window
// is window bytes.
func NewStreamRecv(window int64) StreamRecv { return StreamRecv{window: window, left: window} }

// Fits reports whether a DATA frame of length n (its padding included)
// fits in the stream's window left; one that does not is a stream error
// (FLOW_CONTROL_ERROR).
func (s *StreamRecv) Fits(n int64) bool { return n <= s.left }

// Len is the number of bytes received and not read yet.
func (s *StreamRecv) Len() int { return len(s.buf) }

// Take holds the data of a DATA frame of length n (padding included),
// which Fits, for the reader; the padding counts against both windows
// only, and its room is to go back to the peer at once.
func (s *StreamRecv) Take(c *ConnRecv, n int64, data []byte) {
	s.left -= n
	pad := n - int64(len(data))
	s.free += pad
	c.free += pad
	c.held += int64(len(data))
	if len(data) > 0 {
		if len(s.buf) == 0 {
			s.buf = s.spare[:0]
		}
		s.buf = append(s.buf, data...)
		s.spare = s.buf[:0]
	}
}

// Read moves the data held into p and returns how much it moved, and the
// room to give back to the peer's view of the stream's window: 0 until a
// quarter of the window was read, and when more is false (the peer ended
// its side, or the stream was reset: nothing more is to come).
func (s *StreamRecv) Read(c *ConnRecv, p []byte, more bool) (n int, inc int64) {
	n = copy(p, s.buf)
	s.buf = s.buf[n:]
	s.free += int64(n)
	c.held -= int64(n)
	c.free += int64(n)
	if s.free >= s.window/4 && more {
		inc, s.free = s.free, 0
		s.left += inc
	}
	return n, inc
}

// Discard drops the data held and not read (the stream ended): its room
// goes back to the connection's window, and the stream's buffer is let
// go.
func (s *StreamRecv) Discard(c *ConnRecv) {
	c.held -= int64(len(s.buf))
	c.free += int64(len(s.buf))
	s.buf, s.spare = nil, nil
}
