package h2srv

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/h2conn"
)

// readBuffers holds the connections' read buffers while they have nothing
// buffered.
var readBuffers = sync.Pool{New: func() any { return new([h2conn.ReadBuffer]byte) }}

// connReader is what a connection's Framer reads its frames from. On a
// socket it reads through a buffer of h2conn.ReadBuffer bytes, so that a
// burst of frames costs one read system call; the buffer is taken from
// readBuffers only by a read that returns data and given back once all
// of it was consumed, so a connection that waits for its next frame
// (idle above all) holds none. Without a socket (TLS, whose connection
// buffers a whole record itself) it reads the connection directly.
//
// A connReader is used by the connection's read loop only.
type connReader struct {
	nc  net.Conn
	raw syscall.RawConn // nc's socket; nil: read nc directly
	// pre are bytes read from the connection before it was given, read
	// first.
	pre []byte
	// buf holds the bytes read and not consumed, buf[r:w]; nil when
	// there are none.
	buf  *[h2conn.ReadBuffer]byte
	r, w int
	// fillFn is fill as a func value, made once (a method value allocates
	// each time it is taken); rerr is its result.
	fillFn func(fd uintptr) bool
	rerr   error
}

func newConnReader(nc net.Conn, raw syscall.RawConn, pre []byte) *connReader {
	cr := &connReader{nc: nc, raw: raw, pre: pre}
	cr.fillFn = cr.fill
	return cr
}

// Read reads what is buffered, or waits for the connection's next bytes.
func (cr *connReader) Read(p []byte) (int, error) {
	if len(cr.pre) > 0 {
		n := copy(p, cr.pre)
		cr.pre = cr.pre[n:]
		if len(cr.pre) == 0 {
			cr.pre = nil
		}
		return n, nil
	}
	if cr.raw == nil {
		return cr.nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if cr.buf == nil {
		cr.rerr = nil
		if err := cr.raw.Read(cr.fillFn); err != nil {
			return 0, err
		}
		if cr.rerr != nil {
			return 0, cr.rerr
		}
	}
	n := copy(p, cr.buf[cr.r:cr.w])
	cr.r += n
	if cr.r == cr.w {
		readBuffers.Put(cr.buf)
		cr.buf, cr.r, cr.w = nil, 0, 0
	}
	return n, nil
}

// fill is the socket's read: it takes a buffer only for a read that
// returns data, and reports false (wait for readability, holding nothing)
// when the socket has none.
func (cr *connReader) fill(fd uintptr) bool {
	b := readBuffers.Get().(*[h2conn.ReadBuffer]byte)
	for {
		// A raw read, as internal/h1's Socket does: the socket is
		// non-blocking, so it never blocks.
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			readBuffers.Put(b)
			return false
		case e != 0:
			cr.rerr = os.NewSyscallError("read", e)
		case n == 0:
			cr.rerr = io.EOF
		default:
			cr.buf, cr.r, cr.w = b, 0, int(n)
			return true
		}
		readBuffers.Put(b)
		return true
	}
}

// release gives the buffer back when the connection ends.
func (cr *connReader) release() {
	if cr.buf != nil {
		readBuffers.Put(cr.buf)
		cr.buf, cr.r, cr.w = nil, 0, 0
	}
}
