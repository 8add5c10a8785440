package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/monoclock"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// appConn is one keep-alive HTTP/1.1 connection to an app process. It is
// used by one request at a time, on that request's goroutine (plus, while a
// request body is being sent, one body-writer goroutine the request owns).
type appConn struct {
	nc   net.Conn // the socket, wrapped in an idleTimeoutConn when RequestTimeout > 0
	tcp  *net.TCPConn
	sock *h1.Socket // nc's raw I/O, nil if not a TCP socket
	itc  *idleTimeoutConn
	// br reads the responses while a request is on the connection: the
	// reader of the exchange that sent it (exchange.reader), nil while
	// the connection is idle.
	br   *bufio.Reader
	addr string
	// reused is set once the connection has carried a request: a failure on
	// a reused connection before any response byte may be a stale one.
	reused bool
	idleAt time.Duration // when it went back to the pool (monoclock.Now)
	// abort closes nc. Made once per connection, it is what each request
	// on it registers to run when its client goes away (exchange.send), so
	// that registering costs no closure per request.
	abort func()
}

// connPool holds idle keep-alive connections per app process address. It
// starts no goroutine: idle connections are closed lazily when they are
// found too old, when the pool is full, and by closeIdle.
type connPool struct {
	dialer  net.Dialer
	timeout time.Duration // RequestTimeout; 0: none
	slack   time.Duration

	mu sync.Mutex // protects idle, the lists in it, and closed
	// idle holds the idle connections per address, oldest first. A list
	// stays in the map once made, so that get and put look it up once.
	idle   map[string]*idleList
	closed bool // closeIdle was called: returned connections are closed
}

// idleList is one address's idle connections, oldest first.
type idleList struct{ conns []*appConn }

func newConnPool(timeout time.Duration) *connPool {
	dialTimeout := defaultDialTimeout
	if timeout > 0 {
		dialTimeout = timeout
	}
	return &connPool{
		dialer:  net.Dialer{Timeout: dialTimeout, KeepAlive: -1},
		timeout: timeout,
		slack:   min(timeout/8, time.Second),
		idle:    map[string]*idleList{},
	}
}

// connReadSize is the buffer each app connection reads responses through.
// Response heads larger than it are read in pieces (up to maxResponseHeader).
const connReadSize = 4 << 10

// get returns an idle connection to addr and the monoclock.Now reading it was
// checked against, or nil.
func (p *connPool) get(addr string) (*appConn, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = false
	l := p.idle[addr]
	if l == nil || len(l.conns) == 0 {
		return nil, 0
	}
	conns := l.conns
	c := conns[len(conns)-1]
	conns[len(conns)-1] = nil
	conns = conns[:len(conns)-1]
	now := monoclock.Now()
	if now-c.idleAt <= idleConnTimeout {
		l.conns = conns
		return c, now
	}
	// The newest is too old: every older connection is older still.
	for i, o := range conns {
		o.close()
		conns[i] = nil
	}
	l.conns = conns[:0]
	c.close()
	return nil, 0
}

// dial opens a new connection to addr.
func (p *connPool) dial(ctx context.Context, addr string) (*appConn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return p.wrap(nc, addr), nil
}

// adopt puts hc, a connection to addr on which nothing was sent yet (the
// readiness probe's, handed over with a lease), with the idle connections,
// unless it is older than an idle connection may be. Like any idle one it
// may have been closed by the app meanwhile, which roundTrip handles.
func (p *connPool) adopt(hc *upstream.HandedConn, addr string) {
	if time.Since(hc.Opened) > idleConnTimeout {
		hc.Conn.Close()
		return
	}
	p.put(p.wrap(hc.Conn, addr))
}

// wrap makes nc, a new connection to addr, an appConn.
func (p *connPool) wrap(nc net.Conn, addr string) *appConn {
	c := &appConn{addr: addr}
	c.tcp, _ = nc.(*net.TCPConn)
	if c.tcp != nil {
		if rc, err := c.tcp.SyscallConn(); err == nil {
			c.sock = h1.NewSocket(rc)
			nc = &sockConn{Conn: nc, s: c.sock}
		}
	}
	c.nc = nc
	if p.timeout > 0 {
		c.itc = &idleTimeoutConn{Conn: nc, timeout: p.timeout, slack: p.slack}
		c.nc = c.itc
	}
	cnc := c.nc
	c.abort = func() { _ = cnc.Close() }
	return c
}

// put gives c back for reuse; it is closed if the pool is full or closed.
func (p *connPool) put(c *appConn) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			c.close() // bytes beyond the response: the app broke the framing
			return
		}
		c.br = nil
	}
	c.reused = true
	c.idleAt = monoclock.Now()
	p.mu.Lock()
	l := p.idle[c.addr]
	if l == nil {
		l = &idleList{}
		p.idle[c.addr] = l
	}
	conns := l.conns
	if p.closed || len(conns) >= maxIdleConnsPerHost {
		p.mu.Unlock()
		c.close()
		return
	}
	var stale *appConn
	if len(conns) > 0 && c.idleAt-conns[0].idleAt > idleConnTimeout {
		stale = conns[0]
		conns = append(conns[:0], conns[1:]...)
	}
	l.conns = append(conns, c)
	p.mu.Unlock()
	if stale != nil {
		stale.close()
	}
}

// closeIdle closes every idle connection; connections in use are closed
// when they come back, until the pool is used again.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string]*idleList{}
	p.closed = true
	p.mu.Unlock()
	for _, l := range idle {
		for _, c := range l.conns {
			c.close()
		}
	}
}

// sockConn reads and writes a TCP connection with raw system calls
// (h1.Socket); the rest is the connection's.
type sockConn struct {
	net.Conn
	s *h1.Socket
}

func (c *sockConn) Read(p []byte) (int, error)  { return c.s.Read(p) }
func (c *sockConn) Write(p []byte) (int, error) { return c.s.Write(p) }

// close closes the socket and lets go of the reader.
func (c *appConn) close() {
	_ = c.nc.Close()
	c.br = nil
}

// alive reports whether an idle connection still looks usable: the app has
// neither closed it nor sent anything on it. It peeks without blocking, one
// system call, so it is only used before requests that cannot be retried.
func (c *appConn) alive() bool {
	if c.tcp == nil {
		return true
	}
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, e := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(e, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return err == nil && ok
}

// slotAfterFuncer is a context that holds one function to run when it ends
// at less cost than context.AfterFunc (the lean front end's connection
// context holds one without an allocation). Its caller holds one
// registration at a time: it calls stop at most once, before registering
// the next (stop may be the same function for every registration).
type slotAfterFuncer interface {
	AfterFuncSlot(f func()) (stop func() bool)
}

// afterFuncSlot is context.AfterFunc(ctx, f), through ctx's AfterFuncSlot
// when it has one; nil (nothing registered) when ctx never ends (its Done
// is nil). The caller keeps to AfterFuncSlot's rule: one registration at a
// time, its stop called at most once, before the next. A context with an
// AfterFuncSlot is not asked for its Done: the lean front end's makes its
// done channel on the first Done, an allocation per connection that
// nothing would wait on.
func afterFuncSlot(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(slotAfterFuncer); ok {
		return a.AfterFuncSlot(f)
	}
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, f)
}
