// Package batchconn gathers the writes of a connection into fewer write
// system calls.
//
// An HTTP/2 peer in Go (net/http's server and client) flushes each frame
// or small group of frames as soon as it is queued: a unary gRPC call
// costs a write for its HEADERS, one for its DATA and one for the end of
// the stream or the trailers, on each side of a proxy. Conn takes those
// writes into a buffer and has one goroutine write everything gathered at
// once: the goroutine first yields to the other runnable goroutines of the
// process, so the frames they are about to write join the same system
// call.
package batchconn

import (
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

// maxPending is how many accepted bytes a Conn holds beyond the ones being
// written: a Write that finds it full waits for the writer, as a write to
// a socket whose send buffer is full does.
const maxPending = 256 << 10

// CloseFlushTimeout bounds how long Close waits for the bytes already
// accepted to be written before it closes the connection.
const CloseFlushTimeout = time.Second

// Conn is a net.Conn whose Write copies into a buffer and returns; a
// writer goroutine, started when the buffer receives bytes and ending when
// it is empty, writes them to the underlying connection.
//
// Bytes a Write accepted are written as a socket writes what it accepted:
// a write deadline set later does not apply to them. A write deadline
// bounds a Write that waits for room. A failure of the underlying write is
// returned by the next Write and by Close. Close writes what is pending,
// within CloseFlushTimeout, then closes the connection. Reads and read
// deadlines go to the underlying connection.
//
// The writer goroutine belongs to the Conn: it ends when the buffer is
// empty or a write fails, and Close waits for it. While the peer reads
// nothing it waits in its write, as a Write on the socket itself would,
// until Close.
type Conn struct {
	net.Conn

	// wmu makes each Write whole: a Write that waits for room is not
	// interleaved with another, as on a socket.
	wmu sync.Mutex
	mu  sync.Mutex // protects the fields below
	// buf holds the bytes accepted and not yet taken by the writer; nil
	// when there are none.
	buf *[]byte
	// writing is set while the writer goroutine runs.
	writing bool
	// room, when non-nil, is closed when a waiting Write should look
	// again: the writer took buf, failed, or ended, or the deadline or
	// the connection changed.
	room chan struct{}
	// done, when non-nil, is closed when the writer goroutine ends.
	done     chan struct{}
	err      error // the first failure of the underlying write
	closed   bool
	deadline time.Time // the write deadline
}

// New returns c with its writes gathered.
func New(c net.Conn) *Conn { return &Conn{Conn: c} }

// bufs holds the buffers of connections between bursts of writes, so an
// idle connection keeps none.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// Write accepts p: it copies it into the buffer and starts the writer if
// it is not running. It waits only while maxPending bytes are pending.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return n, net.ErrClosed
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return n, err
		}
		if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
			c.mu.Unlock()
			return n, os.ErrDeadlineExceeded
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return n, nil
		}
		if c.buf == nil {
			c.buf = bufs.Get().(*[]byte)
		}
		if room := maxPending - len(*c.buf); room > 0 {
			k := min(room, len(p))
			*c.buf = append(*c.buf, p[:k]...)
			n += k
			p = p[k:]
			if !c.writing {
				c.writing = true
				go c.write()
			}
			continue
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room, deadline := c.room, c.deadline
		c.mu.Unlock()
		wait(room, deadline)
		c.mu.Lock()
	}
}

// wait waits for room to close or the deadline to pass.
func wait(room chan struct{}, deadline time.Time) {
	if deadline.IsZero() {
		<-room
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-room:
	case <-t.C:
	}
}

// wakeLocked tells the waiting Writes to look again.
func (c *Conn) wakeLocked() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// write is the writer goroutine: it yields once, so that the goroutines
// that are runnable add their writes, then writes the buffer until it is
// empty or a write fails.
func (c *Conn) write() {
	runtime.Gosched()
	c.mu.Lock()
	for c.buf != nil && c.err == nil {
		out := c.buf
		c.buf = nil
		c.wakeLocked()
		c.mu.Unlock()
		_, err := c.Conn.Write(*out)
		putBuf(out)
		c.mu.Lock()
		if err != nil {
			c.err = err
		}
	}
	if c.buf != nil { // not written: the connection failed
		putBuf(c.buf)
		c.buf = nil
	}
	c.writing = false
	c.wakeLocked()
	if c.done != nil {
		close(c.done)
		c.done = nil
	}
	c.mu.Unlock()
}

// putBuf gives b back to bufs unless it grew large.
func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bufs.Put(b)
}

// Close writes the bytes pending, giving up after CloseFlushTimeout, and
// closes the connection. It returns the underlying write's failure if
// there was one, else the underlying Close's result.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.wakeLocked()
	var done chan struct{}
	if c.writing {
		if c.done == nil {
			c.done = make(chan struct{})
		}
		done = c.done
	}
	c.mu.Unlock()
	if done != nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(CloseFlushTimeout))
		<-done
	}
	err := c.Conn.Close()
	c.mu.Lock()
	if c.err != nil {
		err = c.err
	}
	c.mu.Unlock()
	return err
}

// SetWriteDeadline sets the deadline of Writes that wait for room. The
// bytes already accepted are written whatever it is.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.wakeLocked()
	c.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline of the underlying connection and the
// write deadline of c.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}
