package frontend

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawConn is an accepted cleartext TCP connection whose socket Go's
// poller does not see while no call has to wait: its reads, writes,
// socket options and close are raw system calls (RawSyscall: no
// entersyscall/exitsyscall). With one P, the first system call made
// through entersyscall after the P idled wakes the runtime's monitor
// thread (sysmon) from its deep sleep and resets its naps to 20 µs: for
// a new connection per request that was net's accept4 and close, and
// about a fifth of the CPU (see bench/NOTES.md, "The Go runtime's
// share"). A connection whose request comes whole, answered at once and
// closed (or parked in the lean set's epoll instance between requests)
// makes no such call at all.
//
// The first call that would have to wait (a read that finds nothing, a
// write the socket cannot take, through Read, Write or SyscallConn)
// converts the connection, once: its socket is duplicated into an
// ordinary *net.TCPConn (net.FileConn), which waits in Go's poller, and
// that call and every later one go through it, with the deadlines set
// before. The original descriptor is closed. So only a connection that
// waits mid-request (a slow head, a body that is not there yet, a
// response the client does not take at once), or leaves the lean loop
// (an upgrade, HTTP/2), pays for the conversion.
//
// Descriptor reuse. A raw descriptor is a number: closed while another
// goroutine is about to use it, the number could name a new connection
// by then, and a write would go to the wrong client. The connection is
// closed from other goroutines (a drain's forced close, a parked
// connection's expiry, shedding) while its own goroutine may be in a read
// or write, and a conversion closes the original descriptor while a
// writer or a hang-up watcher may still use it. So every use of the
// descriptor holds a reference (counted in state), taken only while the
// connection is not closing; Close (and a conversion) mark it closing,
// and the descriptor is closed once, by whichever of the marker and the
// last holder is last (drop, release). None of the calls a holder makes
// waits (the socket is non-blocking), so the close is never delayed for
// long, and a call that comes after it finds the connection closed (or
// converted) instead of a reused number. A close from another goroutine
// needs no shutdown(2) to wake the connection's own: a raw call never
// waits, a call that had to wait did so in the converted socket, whose
// Close wakes it as net's does, and a parked connection's socket leaves
// the epoll instance with its close (the set then ends the connection).
type rawConn struct {
	fd int
	// state is the descriptor's use: bit 0 closing (no new holder), bit 1
	// closed, and the number of holders from bit 2 up.
	state atomic.Uint64
	// conv is the connection once converted; nil until then.
	conv atomic.Pointer[convertedConn]
	// rdl and wdl are the read and write deadlines while not converted
	// (UnixNano; 0: none); written under mu.
	rdl, wdl atomic.Int64

	mu        sync.Mutex // guards conversion and the fields below; deadline writes
	closed    bool       // Close was called
	keepAlive bool       // TCP keep-alive probes were turned on
	// poll and token are the lean set's epoll registration of fd, moved
	// to the converted socket by a conversion (an epoll registration
	// belongs to the descriptor it was made with).
	poll  *idlePoller
	token uint64

	remote netip.AddrPort
	local  string // the local address, as net.TCPAddr's String
	log    *slog.Logger
}

// convertedConn is a rawConn's socket in Go's poller.
type convertedConn struct {
	tcp *net.TCPConn
	rc  syscall.RawConn
	// rd and wr carry a ReadArg's and a WriteArg's call to rc's Read and
	// Write.
	rd, wr argCall
}

// argCall is the function and argument of an h1.ArgRawConn call, for a
// syscall.RawConn's Read or Write: fn, bound once, calls f(arg, fd). One
// call at a time (as ArgRawConn's callers make them).
type argCall struct {
	f   func(any, uintptr) bool
	arg any
	fn  func(uintptr) bool
}

func (a *argCall) call(fd uintptr) bool { return a.f(a.arg, fd) }

// run calls io (rc's Read or Write) with f(arg, fd); f nil: arg is a
// syscall.RawConn function itself.
func (a *argCall) run(io func(func(uintptr) bool) error, f func(any, uintptr) bool, arg any) error {
	if f == nil {
		return io(arg.(func(uintptr) bool))
	}
	if a.fn == nil {
		a.fn = a.call
	}
	a.f, a.arg = f, arg
	err := io(a.fn)
	a.f, a.arg = nil, nil
	return err
}

const (
	rawClosing = 1 << iota
	rawClosed
	rawHolder // one holder
)

// acquire takes a reference to the descriptor; false when the connection
// is closing (closed, or converted).
func (c *rawConn) acquire() bool {
	for {
		s := c.state.Load()
		if s&rawClosing != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+rawHolder) {
			return true
		}
	}
}

// release gives a reference back, closing the descriptor when it was
// the last one of a closing connection.
func (c *rawConn) release() {
	if c.state.Add(^uint64(rawHolder-1)) == rawClosing {
		c.closeFD()
	}
}

// drop marks the connection closing, and closes the descriptor when
// nothing holds it (else the last holder's release does).
func (c *rawConn) drop() {
	for {
		s := c.state.Load()
		if s&rawClosing != 0 {
			return
		}
		if c.state.CompareAndSwap(s, s|rawClosing) {
			if s == 0 {
				c.closeFD()
			}
			return
		}
	}
}

// closeFD closes the descriptor, once. A socket without SO_LINGER does
// not block in close(2); closing it also takes it out of every epoll
// instance it is registered in (the only descriptor of its socket: a
// conversion closes its own duplicate).
func (c *rawConn) closeFD() {
	if c.state.CompareAndSwap(rawClosing, rawClosing|rawClosed) {
		_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(c.fd), 0, 0)
	}
}

// expired reports whether the deadline d (UnixNano; 0: none) has passed.
func expired(d int64) bool {
	return d != 0 && time.Now().UnixNano() >= d
}

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}

// errConvert is a conversion that failed for want of a descriptor.
func errConvert(err error) error {
	return fmt.Errorf("socket into Go's poller: %w", err)
}

func (c *rawConn) Read(p []byte) (int, error) {
	if cv := c.conv.Load(); cv != nil {
		return cv.tcp.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !c.acquire() {
		return c.afterClose("read", func(cv *convertedConn) (int, error) { return cv.tcp.Read(p) })
	}
	if expired(c.rdl.Load()) {
		c.release()
		return 0, opError("read", os.ErrDeadlineExceeded)
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			c.release()
			if r == 0 {
				return 0, io.EOF
			}
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			c.release()
			cv, err := c.convert()
			if err != nil {
				return 0, opError("read", err)
			}
			return cv.tcp.Read(p)
		default:
			c.release()
			return 0, opError("read", os.NewSyscallError("read", e))
		}
	}
}

func (c *rawConn) Write(p []byte) (int, error) {
	if cv := c.conv.Load(); cv != nil {
		return cv.tcp.Write(p)
	}
	if !c.acquire() {
		return c.afterClose("write", func(cv *convertedConn) (int, error) { return cv.tcp.Write(p) })
	}
	if expired(c.wdl.Load()) {
		c.release()
		return 0, opError("write", os.ErrDeadlineExceeded)
	}
	n := 0
	for n < len(p) {
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		switch e {
		case 0:
			n += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			c.release()
			cv, err := c.convert()
			if err != nil {
				return n, opError("write", err)
			}
			m, err := cv.tcp.Write(p[n:])
			return n + m, err
		default:
			c.release()
			return n, opError("write", os.NewSyscallError("write", e))
		}
	}
	c.release()
	return n, nil
}

// afterClose is a call that found the descriptor closing: it goes to the
// converted connection if a conversion closed it, else fails.
func (c *rawConn) afterClose(op string, f func(*convertedConn) (int, error)) (int, error) {
	if cv := c.conv.Load(); cv != nil {
		return f(cv)
	}
	return 0, opError(op, net.ErrClosed)
}

// Close closes the connection. Safe from any goroutine and more than once
// (then it returns net.ErrClosed); the descriptor is closed when no call
// holds it.
func (c *rawConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return opError("close", net.ErrClosed)
	}
	c.closed = true
	cv := c.conv.Load()
	c.mu.Unlock()
	if cv != nil {
		return cv.tcp.Close()
	}
	c.drop()
	return nil
}

// CloseWrite shuts the sending side down (a FIN after what was written).
func (c *rawConn) CloseWrite() error {
	if cv := c.conv.Load(); cv != nil {
		return cv.tcp.CloseWrite()
	}
	if !c.acquire() {
		_, err := c.afterClose("close", func(cv *convertedConn) (int, error) { return 0, cv.tcp.CloseWrite() })
		return err
	}
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(c.fd), unix.SHUT_WR, 0)
	c.release()
	if e != 0 {
		return opError("close", os.NewSyscallError("shutdown", e))
	}
	return nil
}

func (c *rawConn) LocalAddr() net.Addr {
	ap, err := netip.ParseAddrPort(c.local)
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

func (c *rawConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

func (c *rawConn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, true, true)
}

func (c *rawConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, true, false)
}

func (c *rawConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, false, true)
}

// setDeadline sets the read and/or write deadline: kept here until a
// conversion carries them over, then on the converted connection.
func (c *rawConn) setDeadline(t time.Time, read, write bool) error {
	c.mu.Lock()
	cv := c.conv.Load()
	if cv == nil {
		if c.closed {
			c.mu.Unlock()
			return opError("set", net.ErrClosed)
		}
		var d int64
		if !t.IsZero() {
			d = max(t.UnixNano(), 1)
		}
		if read {
			c.rdl.Store(d)
		}
		if write {
			c.wdl.Store(d)
		}
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	switch {
	case read && write:
		return cv.tcp.SetDeadline(t)
	case read:
		return cv.tcp.SetReadDeadline(t)
	default:
		return cv.tcp.SetWriteDeadline(t)
	}
}

// SetKeepAliveConfig turns TCP keep-alive probes on or off, with Go's
// default timing for what cfg leaves zero (as (*net.TCPConn).SetKeepAliveConfig).
func (c *rawConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cv := c.conv.Load(); cv != nil {
		return cv.tcp.SetKeepAliveConfig(cfg)
	}
	if !c.acquire() {
		return opError("set", net.ErrClosed)
	}
	defer c.release()
	if !cfg.Enable {
		c.keepAlive = false
		return c.setsockopt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0)
	}
	secs := func(d, def time.Duration) int {
		if d == 0 {
			d = def
		}
		return int(max((d+time.Second-1)/time.Second, 1))
	}
	count := cfg.Count
	if count == 0 {
		count = 9
	}
	if err := c.setsockopt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	c.keepAlive = true
	if cfg.Idle >= 0 {
		if err := c.setsockopt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs(cfg.Idle, 15*time.Second)); err != nil {
			return err
		}
	}
	if cfg.Interval >= 0 {
		if err := c.setsockopt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs(cfg.Interval, 15*time.Second)); err != nil {
			return err
		}
	}
	if count > 0 {
		if err := c.setsockopt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count); err != nil {
			return err
		}
	}
	return nil
}

// setsockopt sets an int socket option with a raw system call; the
// caller holds the descriptor.
func (c *rawConn) setsockopt(level, opt, v int) error {
	if err := rawSetsockoptInt(c.fd, level, opt, v); err != nil {
		return opError("set", err)
	}
	return nil
}

func rawSetsockoptInt(fd, level, opt, v int) error {
	x := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&x)), 4, 0)
	if e != 0 {
		return os.NewSyscallError("setsockopt", e)
	}
	return nil
}

// SyscallConn returns the socket for raw use. Its Read and Write call f
// once on the raw descriptor; when f reports that it would have to wait,
// the connection converts and the call goes on through the converted
// socket (whose descriptor f then gets). Once converted, it is the
// converted socket's.
func (c *rawConn) SyscallConn() (syscall.RawConn, error) {
	if cv := c.conv.Load(); cv != nil {
		return cv.rc, nil
	}
	return (*rawSocket)(c), nil
}

// tcpConn converts the connection (if it is not yet) and returns it as a
// *net.TCPConn: for what needs one (splice, lingering after a refusal) or
// hands the connection to a server that waits in Go's poller (an
// upgrade, HTTP/2).
func (c *rawConn) tcpConn() (*net.TCPConn, error) {
	cv, err := c.convert()
	if err != nil {
		return nil, opError("convert", err)
	}
	return cv.tcp, nil
}

// convert moves the socket into Go's poller, once: a duplicate of fd
// becomes a *net.TCPConn with the deadlines set so far, the keep-alive
// setting (net.FileConn turns probes on: they are turned off again unless
// asked for) and the epoll registration; fd is closed once no call holds
// it. It fails when the connection was closed, or no descriptor was left.
func (c *rawConn) convert() (*convertedConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cv := c.conv.Load(); cv != nil {
		return cv, nil
	}
	if c.closed || !c.acquire() {
		return nil, net.ErrClosed
	}
	defer c.release()
	// The duplicate is made raw: os.NewFile takes it over, and
	// net.FileConn makes its own from it.
	r, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return nil, errConvert(os.NewSyscallError("fcntl", e))
	}
	f := os.NewFile(r, "tcp")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, errConvert(err)
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()
		return nil, errConvert(fmt.Errorf("not a TCP socket: %T", nc))
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		_ = tcp.Close()
		return nil, errConvert(err)
	}
	if !c.keepAlive {
		_ = tcp.SetKeepAlive(false)
	}
	if d := c.rdl.Load(); d != 0 {
		_ = tcp.SetReadDeadline(time.Unix(0, d))
	}
	if d := c.wdl.Load(); d != 0 {
		_ = tcp.SetWriteDeadline(time.Unix(0, d))
	}
	if c.poll != nil {
		// Registered in the lean set's epoll instance: the registration
		// goes with the socket to its new descriptor, under the same
		// token (bytes already there raise an event at once, which the
		// set takes as a wake-up of a connection that is serving).
		if err := c.poll.move(c.fd, rc, c.token); err != nil {
			c.log.Debug("move epoll registration", "remote", c.remote.String(), "err", err)
		}
		c.poll = nil
	}
	cv := &convertedConn{tcp: tcp, rc: rc}
	c.conv.Store(cv)
	rawConversions.Add(1)
	c.drop()
	return cv, nil
}

// registerIn registers the socket in the lean set's epoll instance p with
// token (see idlePoller.register), and remembers it for a conversion.
func (c *rawConn) registerIn(p *idlePoller, token uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := p.register((*rawSocket)(c), token); err != nil {
		return err
	}
	if c.conv.Load() == nil {
		c.poll, c.token = p, token
	}
	return nil
}

// rawConversions counts the conversions, so tests can tell that a raw
// connection took that path.
var rawConversions atomic.Int64

// rawSocket is a rawConn's syscall.RawConn.
type rawSocket rawConn

func (s *rawSocket) Control(f func(fd uintptr)) error {
	c := (*rawConn)(s)
	if cv := c.conv.Load(); cv != nil {
		return cv.rc.Control(f)
	}
	if !c.acquire() {
		if cv := c.conv.Load(); cv != nil {
			return cv.rc.Control(f)
		}
		return opError("raw-control", net.ErrClosed)
	}
	f(uintptr(c.fd))
	c.release()
	return nil
}

func (s *rawSocket) Read(f func(fd uintptr) bool) error {
	return (*rawConn)(s).rawIO("raw-read", &s.rdl, nil, f, (*convertedConn).read)
}

func (s *rawSocket) Write(f func(fd uintptr) bool) error {
	return (*rawConn)(s).rawIO("raw-write", &s.wdl, nil, f, (*convertedConn).write)
}

// ReadArg is Read with f(arg, fd) (h1.ArgRawConn).
func (s *rawSocket) ReadArg(f func(any, uintptr) bool, arg any) error {
	return (*rawConn)(s).rawIO("raw-read", &s.rdl, f, arg, (*convertedConn).read)
}

// WriteArg is Write with f(arg, fd) (h1.ArgRawConn).
func (s *rawSocket) WriteArg(f func(any, uintptr) bool, arg any) error {
	return (*rawConn)(s).rawIO("raw-write", &s.wdl, f, arg, (*convertedConn).write)
}

func (cv *convertedConn) read(f func(any, uintptr) bool, arg any) error {
	return cv.rd.run(cv.rc.Read, f, arg)
}

func (cv *convertedConn) write(f func(any, uintptr) bool, arg any) error {
	return cv.wr.run(cv.rc.Write, f, arg)
}

// rawIO calls f(arg, fd) once on the descriptor (f nil: arg is a
// syscall.RawConn function, called with fd), after checking the deadline
// dl; when f would wait, it converts the connection and waits through it
// (wait is the converted socket's Read or Write).
func (c *rawConn) rawIO(op string, dl *atomic.Int64, f func(any, uintptr) bool, arg any, wait func(*convertedConn, func(any, uintptr) bool, any) error) error {
	if cv := c.conv.Load(); cv != nil {
		return wait(cv, f, arg)
	}
	if !c.acquire() {
		if cv := c.conv.Load(); cv != nil {
			return wait(cv, f, arg)
		}
		return opError(op, net.ErrClosed)
	}
	if expired(dl.Load()) {
		c.release()
		return opError(op, os.ErrDeadlineExceeded)
	}
	var done bool
	if f == nil {
		done = arg.(func(uintptr) bool)(uintptr(c.fd))
	} else {
		done = f(arg, uintptr(c.fd))
	}
	c.release()
	if done {
		return nil
	}
	cv, err := c.convert()
	if err != nil {
		return opError(op, err)
	}
	return wait(cv, f, arg)
}

// rawAccepter accepts a listener's connections as rawConns (acceptRaw).
type rawAccepter struct {
	l   *listener
	sa  unix.RawSockaddrAny // the peer's address of the last accept
	len uint32
	// local is the listener's address as a connection's LocalAddr
	// string; "" when it is bound to an unspecified address (then each
	// connection asks its socket, getsockname).
	local string
}

func newRawAccepter(l *listener) *rawAccepter {
	a := &rawAccepter{l: l}
	if ta, ok := l.raw.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		a.local = ta.String()
	}
	return a
}

// accept accepts one connection on the listening socket fd into c (new,
// and left as it was when none was accepted), with raw system calls:
// accept4 (non-blocking, close-on-exec) and TCP_NODELAY (as net sets it;
// per connection: one set on the listening socket reaches only the
// connections whose handshake completes after it, not those already
// queued on an inherited or prebound socket); unix.EAGAIN when none is
// waiting.
func (a *rawAccepter) accept(fd uintptr, c *rawConn) error {
	a.len = unix.SizeofSockaddrAny
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&a.sa)), uintptr(unsafe.Pointer(&a.len)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return e
	}
	c.fd, c.remote, c.local, c.log = int(r), sockaddrAddrPort(&a.sa), a.local, a.l.srv.log
	if c.local == "" {
		var sa unix.RawSockaddrAny
		n := uint32(unix.SizeofSockaddrAny)
		if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, r, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n))); e == 0 {
			c.local = sockaddrAddrPort(&sa).String()
		}
	}
	_ = rawSetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return nil
}

// sockaddrAddrPort is the address of a TCP socket address, as net would
// print it: an IPv4-mapped IPv6 address as IPv4, a zone by its
// interface's name.
func sockaddrAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		ip := netip.AddrFrom16(p.Addr).Unmap()
		if p.Scope_id != 0 {
			zone := strconv.Itoa(int(p.Scope_id))
			if ifi, err := net.InterfaceByIndex(int(p.Scope_id)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		return netip.AddrPortFrom(ip, ntohs(p.Port))
	}
	return netip.AddrPort{}
}

// ntohs is a port in network byte order, read as the host's uint16.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
