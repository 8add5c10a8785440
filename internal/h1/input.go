package h1

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"
)

// BufSize is the size of a connection's pooled read buffer. Most request
// heads fit it; a larger one makes the caller Grow the buffer.
const BufSize = 4 << 10

var bufPool = sync.Pool{New: func() any { return new([BufSize]byte) }}

// ErrFull is returned by Fill when the buffer is full of unread bytes.
var ErrFull = errors.New("h1: read buffer full")

// Input is the read side of a client connection. Its buffer is taken from
// a pool when bytes arrive and given back by Release, so an idle keep-alive
// connection holds none: on a socket, Fill waits for readability without a
// buffer (syscall.RawConn) and reads into one only once data is there.
//
// An Input is used by one goroutine at a time.
type Input struct {
	conn net.Conn
	raw  syscall.RawConn // nil: read through conn with a buffer held
	araw ArgRawConn      // raw, when it is one
	// buf is the read buffer: pooled (BufSize bytes, from bufPool) or, once
	// Grow made it larger, its own; nil while nothing is buffered.
	buf    []byte
	pooled *[BufSize]byte // buf's array when it came from bufPool
	r, w   int
	// readFn is readRaw as a func value, made by the first read of a
	// raw that is no ArgRawConn (a method value allocates each time it
	// is taken); rerr is readRaw's result.
	readFn func(fd uintptr) bool
	rerr   error
	// try makes readRaw return on EAGAIN instead of waiting (TryFill);
	// none is then set.
	try, none bool
	// more is set when the last read from the connection filled all the
	// room it was given, so the socket may hold more bytes (see MayHoldMore).
	more bool
}

// ArgRawConn is a syscall.RawConn that also calls a function with an
// argument: ReadArg(f, arg) is Read(func(fd uintptr) bool { return f(arg,
// fd) }), WriteArg likewise Write, without that closure. Input and Socket
// use it when their socket is one: their read and write functions would
// otherwise be method values bound per connection, an allocation each.
// A ReadArg (a WriteArg) is not called while another one runs.
type ArgRawConn interface {
	ReadArg(f func(arg any, fd uintptr) bool, arg any) error
	WriteArg(f func(arg any, fd uintptr) bool, arg any) error
}

// NewInput returns the read side of c. raw, if not nil, is c's socket,
// used to wait for data without holding a buffer; c's read deadline
// applies to both.
func NewInput(c net.Conn, raw syscall.RawConn) *Input {
	in := &Input{}
	in.Init(c, raw)
	return in
}

// Init makes in the read side of c, as NewInput does, in place (an Input
// held inside a larger value costs no allocation of its own).
func (in *Input) Init(c net.Conn, raw syscall.RawConn) {
	*in = Input{conn: c, raw: raw}
	in.araw, _ = raw.(ArgRawConn)
}

// rawRead runs readRaw in raw's Read.
func (in *Input) rawRead() error {
	if in.araw != nil {
		return in.araw.ReadArg(inputReadRaw, in)
	}
	if in.readFn == nil {
		in.readFn = in.readRaw
	}
	return in.raw.Read(in.readFn)
}

// inputReadRaw is readRaw for ArgRawConn.ReadArg.
func inputReadRaw(in any, fd uintptr) bool { return in.(*Input).readRaw(fd) }

// Buffered returns the bytes read and not yet consumed. The slice is valid
// until the next Fill, Discard or Release.
func (in *Input) Buffered() []byte {
	if in.buf == nil {
		return nil
	}
	return in.buf[in.r:in.w]
}

// Discard consumes n buffered bytes.
func (in *Input) Discard(n int) { in.r += n }

// Fill reads at least one more byte into the buffer, blocking until data
// arrives, the read deadline passes or the connection ends (io.EOF). It
// returns ErrFull when the buffer is full of unread bytes.
func (in *Input) Fill() error {
	if in.buf == nil {
		return in.fillIdle()
	}
	if in.r > 0 {
		in.w = copy(in.buf, in.buf[in.r:in.w])
		in.r = 0
	}
	if in.w == len(in.buf) {
		return ErrFull
	}
	n, err := in.conn.Read(in.buf[in.w:])
	in.more = n == len(in.buf)-in.w
	in.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// fillIdle waits for data and only then takes a buffer for it.
func (in *Input) fillIdle() error {
	if in.raw == nil {
		in.take(bufPool.Get().(*[BufSize]byte))
		return in.Fill()
	}
	in.rerr = nil
	if err := in.rawRead(); err != nil {
		return err
	}
	return in.rerr
}

// TryFill is Fill without the wait, for an Input on a socket with nothing
// buffered: it reads what the socket holds now and reports false (and no
// error) when that is nothing. The read deadline applies: a deadline
// already past fails it.
func (in *Input) TryFill() (bool, error) {
	if in.raw == nil || len(in.Buffered()) > 0 {
		return false, errors.New("h1: TryFill needs a socket and an empty buffer")
	}
	in.Release()
	in.rerr, in.try, in.none = nil, true, false
	err := in.rawRead()
	in.try = false
	if err == nil {
		err = in.rerr
	}
	return err == nil && !in.none, err
}

// readRaw is fillIdle's read: it takes a buffer only for a read that
// returns data, and reports false (wait for readability) on EAGAIN.
func (in *Input) readRaw(fd uintptr) bool {
	b := bufPool.Get().(*[BufSize]byte)
	in.more = false
	for {
		// A raw read, as Socket does: it never blocks.
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), BufSize)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			bufPool.Put(b)
			in.none = in.try
			return in.try // wait for readability, holding nothing (unless TryFill)
		case e != 0:
			bufPool.Put(b)
			in.rerr = e
		case r > 0:
			in.take(b)
			in.w = int(r)
			in.more = r == BufSize
		default:
			bufPool.Put(b)
			in.rerr = io.EOF
		}
		return true
	}
}

// take makes the pooled array b the (empty) buffer.
func (in *Input) take(b *[BufSize]byte) {
	in.buf, in.pooled, in.r, in.w = b[:], b, 0, 0
}

// Grow makes the buffer larger, up to limit bytes (doubling), keeping what
// is buffered; false when it already holds limit bytes or more. A grown
// buffer is dropped, not pooled, by Release: heads this large are rare.
func (in *Input) Grow(limit int) bool {
	if len(in.buf) >= limit {
		return false
	}
	b := make([]byte, min(2*len(in.buf), limit))
	in.w = copy(b, in.buf[in.r:in.w])
	in.r = 0
	if in.pooled != nil {
		bufPool.Put(in.pooled)
		in.pooled = nil
	}
	in.buf = b
	return true
}

// MayHoldMore reports whether the last read from the connection filled
// all the room it was given: then the socket may still hold bytes that
// came before that read. A read that returned less took everything the
// socket held then (a TCP read stops only when its queue is empty), so
// bytes since came after it: a caller that waits for readability with an
// edge-triggered epoll is told of those, not of these.
func (in *Input) MayHoldMore() bool { return in.more }

// Release gives the buffer back if nothing is buffered.
func (in *Input) Release() {
	if in.buf != nil && in.r == in.w {
		if in.pooled != nil {
			bufPool.Put(in.pooled)
		}
		in.buf, in.pooled, in.r, in.w = nil, nil, 0, 0
	}
}

// Read reads buffered bytes, or from the connection when none are
// buffered (directly into p when p is at least BufSize long).
func (in *Input) Read(p []byte) (int, error) {
	if b := in.Buffered(); len(b) > 0 {
		n := copy(p, b)
		in.r += n
		return n, nil
	}
	if len(p) >= BufSize || in.buf == nil && in.raw == nil {
		n, err := in.conn.Read(p)
		in.more = n == len(p)
		return n, err
	}
	if err := in.Fill(); err != nil {
		return 0, err
	}
	n := copy(p, in.Buffered())
	in.r += n
	return n, nil
}
