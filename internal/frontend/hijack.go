package frontend

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// hijackSet holds hijacked connections until they close.
type hijackSet struct {
	mu    sync.Mutex // protects conns
	conns map[*hijackedConn]struct{}
	// idle is the idle timeout of upgraded connections (Timeouts.WebSocket),
	// in nanoseconds; 0 means none. It applies to connections hijacked
	// after it is set.
	idle   atomic.Int64
	logger *slog.Logger // nil: none
}

func (h *hijackSet) log() *slog.Logger {
	if h.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.logger
}

// hijackedConn is an upgraded (WebSocket) client connection. With an idle
// timeout, it is closed once no byte has been read from or written to it
// for that long; closing it ends the relay to the app in both directions.
type hijackedConn struct {
	net.Conn
	set  *hijackSet
	once sync.Once

	idle   time.Duration
	last   atomic.Int64 // time of the last read or write, UnixNano
	timer  *time.Timer  // runs expire; nil without an idle timeout
	closed atomic.Bool

	// in and out count the bytes read from and written to the client
	// through the connection (not through the bufio.ReadWriter the hijack
	// returned with it, which the hijacker writes its 101 head with): the
	// upgraded connection's bytes each way, which the request reports
	// as its body's (cs-bytes, sc-bytes).
	in, out atomic.Int64
}

// add tracks c, and turns its TCP keep-alive probes on: an upgraded
// connection may be quiet for long, without an idle timeout at all (see
// listenConfig).
func (h *hijackSet) add(c net.Conn) *hijackedConn {
	keepAliveOn(c)
	hc := &hijackedConn{Conn: c, set: h, idle: time.Duration(h.idle.Load())}
	h.mu.Lock()
	if h.conns == nil {
		h.conns = map[*hijackedConn]struct{}{}
	}
	h.conns[hc] = struct{}{}
	h.mu.Unlock()
	if hc.idle > 0 {
		hc.last.Store(time.Now().UnixNano())
		hc.timer = time.AfterFunc(hc.idle, hc.expire)
	}
	return hc
}

// expire closes c if it has been idle for c.idle, else waits for the rest.
func (c *hijackedConn) expire() {
	if c.closed.Load() {
		return
	}
	quiet := time.Since(time.Unix(0, c.last.Load()))
	if quiet < c.idle {
		c.timer.Reset(c.idle - quiet)
		return
	}
	c.set.log().Debug("upgraded connection idle, closing", "remote", c.RemoteAddr().String(), "idle", c.idle.String())
	_ = c.Close()
}

func (c *hijackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.in.Add(int64(n))
		if c.timer != nil {
			c.last.Store(time.Now().UnixNano())
		}
	}
	return n, err
}

func (c *hijackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.out.Add(int64(n))
		if c.timer != nil {
			c.last.Store(time.Now().UnixNano())
		}
	}
	return n, err
}

func (c *hijackedConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		if c.timer != nil {
			c.timer.Stop()
		}
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

// closeAll closes every hijacked connection and returns how many there were.
func (h *hijackSet) closeAll() int {
	h.mu.Lock()
	conns := make([]*hijackedConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}
