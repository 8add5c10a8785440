package h1

import (
	"io"
	"syscall"
	"time"
	"unsafe"
)

// Socket reads and writes a non-blocking socket with raw system calls
// (RawSyscall: no entersyscall/exitsyscall), waiting for readiness through
// Go's poller as net.Conn does, with its deadlines. A loopback write of a
// small response runs the receiver's TCP processing and wake-up inside the
// call; as an ordinary syscall it long enough for the runtime's monitor to
// hand the P to another thread, which costs more than the write. Both calls
// are non-blocking, so holding the P is safe.
//
// A Socket is used by one reader and one writer at a time (not two of
// either).
type Socket struct {
	rc  syscall.RawConn
	arc ArgRawConn // rc, when it is one: no writeFn or readFn is made

	wp      []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool

	// wtimeout and wdl are the write timeout and the connection whose
	// write deadline it sets (SetWriteTimeout); wset is set while a
	// Write's deadline is set, wmark is how much of wp was written when
	// it was.
	wtimeout time.Duration
	wdl      WriteDeadliner
	wset     bool
	wmark    int

	rp     []byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	// pending is written by the next Read before it waits (WriteBeforeRead);
	// short is set when that write could not finish without waiting.
	pending []byte
	short   bool
}

// WriteBeforeRead queues p (a request) to be written by the next Read,
// inside its wait for readability: the poller's readiness is reset before
// the write, so the answer's arrival wakes the Read, and the read that
// would only find nothing yet (EAGAIN) is saved. p must stay unchanged until
// that Read returns.
func (s *Socket) WriteBeforeRead(p []byte) { s.pending = p }

// NewSocket returns a Socket on rc.
func NewSocket(rc syscall.RawConn) *Socket {
	s := &Socket{}
	s.Init(rc)
	return s
}

// Init makes s a Socket on rc, as NewSocket does, in place (a Socket
// held inside a larger value costs no allocation of its own).
func (s *Socket) Init(rc syscall.RawConn) {
	*s = Socket{rc: rc}
	s.arc, _ = rc.(ArgRawConn)
}

// WriteDeadliner is a connection whose write deadline can be set: the
// net.Conn of a Socket's descriptor.
type WriteDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// SetWriteTimeout makes d (0: none) the longest a Write waits for the
// socket to take more bytes: when a write cannot complete at once, c's
// write deadline is set to d from then, renewed each time the wait ends
// with bytes written, and cleared when the Write returns. A write that
// completes at once sets no deadline. It must not be called during a
// Write.
func (s *Socket) SetWriteTimeout(d time.Duration, c WriteDeadliner) {
	s.wtimeout, s.wdl = d, c
}

// Write writes all of p unless an error or the write deadline (see
// SetWriteTimeout) stops it.
func (s *Socket) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.wp, s.wn, s.werr = p, 0, nil
	var err error
	if s.arc != nil {
		err = s.arc.WriteArg(socketWrite, s)
	} else {
		if s.writeFn == nil {
			s.writeFn = s.write // made once, by the first Write (the write side's own)
		}
		err = s.rc.Write(s.writeFn)
	}
	n := s.wn
	s.wp = nil
	if s.wset {
		s.wset = false
		if derr := s.wdl.SetWriteDeadline(time.Time{}); err == nil && s.werr == nil && derr != nil {
			return n, derr
		}
	}
	if err != nil {
		return n, err
	}
	return n, s.werr
}

// socketWrite is write for ArgRawConn.WriteArg.
func socketWrite(s any, fd uintptr) bool { return s.(*Socket).write(fd) }

func (s *Socket) write(fd uintptr) bool {
	for s.wn < len(s.wp) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wp[s.wn])), uintptr(len(s.wp)-s.wn))
		switch e {
		case 0:
			s.wn += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			if s.wtimeout > 0 && (!s.wset || s.wn > s.wmark) {
				// The poller waits next: bound the wait, renewed
				// after progress.
				if err := s.wdl.SetWriteDeadline(time.Now().Add(s.wtimeout)); err != nil {
					s.werr = err
					return true
				}
				s.wset, s.wmark = true, s.wn
			}
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// Read reads into p, waiting for data; io.EOF when the peer closed.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rp, s.rn, s.rerr = p, 0, nil
	err := s.rawRead()
	if err == nil && s.short {
		// The queued write would have waited: finish it as a write, then
		// read as usual.
		s.short = false
		rest := s.pending
		s.pending = nil
		if _, err = s.Write(rest); err == nil {
			err = s.rawRead()
		}
	}
	s.pending = nil
	n := s.rn
	s.rp = nil
	if err != nil {
		return n, err
	}
	return n, s.rerr
}

// rawRead runs read in rc's Read.
func (s *Socket) rawRead() error {
	if s.arc != nil {
		return s.arc.ReadArg(socketRead, s)
	}
	if s.readFn == nil {
		s.readFn = s.read // made once, by the first Read: a Socket only written costs none
	}
	return s.rc.Read(s.readFn)
}

// socketRead is read for ArgRawConn.ReadArg.
func socketRead(s any, fd uintptr) bool { return s.(*Socket).read(fd) }

func (s *Socket) read(fd uintptr) bool {
	for len(s.pending) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.pending[0])), uintptr(len(s.pending)))
		switch e {
		case 0:
			s.pending = s.pending[r:]
			if len(s.pending) == 0 {
				s.pending = nil
				return false // wait for the answer
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			s.short = true
			return true
		default:
			s.pending = nil
			s.rerr = e
			return true
		}
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rp[0])), uintptr(len(s.rp)))
		switch e {
		case 0:
			s.rn = int(r)
			if r == 0 {
				s.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.rerr = e
			return true
		}
	}
}
