package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// Bounds of the automatic maxConnectionsPerClient
// (Limits.MaxConnectionsPerClient = 0): a quarter of maxConnections, at
// least minAutoPerClient, so that one client address cannot take every
// connection while clients behind one NAT or proxy still get many.
const (
	perClientShare   = 4
	minAutoPerClient = 64
	ipv6ClientPrefix = 64 // an IPv6 client is its /64: one host can use the whole of it
)

// reasonPerClient is logged for a connection refused by the per-client limit.
const reasonPerClient = "maxConnectionsPerClient"

// effectivePerClient turns the configured maxConnectionsPerClient into
// the limit applied (0: none): -1 is none, a positive value is kept, and
// 0 (automatic) is a quarter of maxConns, at least minAutoPerClient, or
// none when maxConns is 0 (no limit).
func effectivePerClient(configured, maxConns int) int {
	switch {
	case configured < 0:
		return 0
	case configured > 0:
		return configured
	case maxConns <= 0:
		return 0
	}
	return max(maxConns/perClientShare, minAutoPerClient)
}

// connCounter counts open client connections, TCP and QUIC, for
// Limits.MaxConnections (over all listeners) and
// Limits.MaxConnectionsPerClient (per client address).
type connCounter struct {
	open      atomic.Int64
	max       atomic.Int64 // <= 0: unlimited
	perClient atomic.Int64 // <= 0: unlimited

	mu sync.Mutex // protects the fields below
	// byClient is the index in clients of each client with a connection
	// open. A connection's place holds its client's index, so that its
	// release needs no map operation unless it was the client's last.
	byClient map[netip.Prefix]int32
	clients  []clientCount
	free     []int32 // indexes in clients of no client
}

// clientCount is a client's open connections.
type clientCount struct {
	key netip.Prefix
	n   int64
}

// clientKey is what the per-client limit counts by: the address of an
// IPv4 client, the /64 of an IPv6 one.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(ipv6ClientPrefix)
	return p
}

// admit counts a new connection from client (the zero Addr if unknown;
// exempt skips the per-client limit, for trusted proxies). ok is false,
// and nothing is counted, when the client has perClient connections open
// already. over reports that the connection is beyond max. The place is
// given back by its release; call it once.
func (cc *connCounter) admit(client netip.Addr, exempt bool) (place connPlace, over, ok bool) {
	place.cc = cc
	if limit := cc.perClient.Load(); limit > 0 && client.IsValid() && !exempt {
		key := clientKey(client)
		cc.mu.Lock()
		i, ok := cc.byClient[key]
		if !ok {
			i = cc.addClientLocked(key)
		}
		c := &cc.clients[i]
		if c.n >= limit {
			cc.mu.Unlock()
			return connPlace{}, false, false
		}
		c.n++
		cc.mu.Unlock()
		place.client, place.counted = i, true
	}
	n := cc.open.Add(1)
	m := cc.max.Load()
	return place, m > 0 && n > m, true
}

// addClientLocked counts key as a client with no connection yet, and
// returns its index in cc.clients. Called with cc.mu held.
func (cc *connCounter) addClientLocked(key netip.Prefix) int32 {
	var i int32
	if n := len(cc.free); n > 0 {
		i = cc.free[n-1]
		cc.free = cc.free[:n-1]
	} else {
		i = int32(len(cc.clients))
		cc.clients = append(cc.clients, clientCount{})
	}
	cc.clients[i] = clientCount{key: key}
	if cc.byClient == nil {
		cc.byClient = map[netip.Prefix]int32{}
	}
	cc.byClient[key] = i
	return i
}

// connPlace is a connection's place in a connCounter: a value, so that
// holding it costs a connection no allocation.
type connPlace struct {
	cc      *connCounter
	client  int32 // the client's index in cc.clients, when counted
	counted bool  // counted against the per-client limit
}

// release gives the place back.
func (p connPlace) release() {
	p.cc.open.Add(-1)
	if p.counted {
		cc := p.cc
		cc.mu.Lock()
		c := &cc.clients[p.client]
		if c.n--; c.n <= 0 {
			delete(cc.byClient, c.key)
			*c = clientCount{}
			cc.free = append(cc.free, p.client)
		}
		cc.mu.Unlock()
	}
}

// peerAddr is the IP address of a connection's peer, the zero Addr if
// it has none.
func peerAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// exempt reports whether client is one of the listener's trusted proxies,
// whose connections carry many clients' requests and are not limited per
// client.
func (l *listener) exempt(client netip.Addr) bool {
	rt := l.routes.Load()
	if rt == nil {
		return false
	}
	return isTrusted(client, rt.trusted)
}

// track counts an accepted TCP connection. Beyond the per-client limit
// it closes c and returns nil. Beyond maxConnections it first closes one
// connection of the listener that waits for a request (shedIdle); if
// there is none, the connection is marked over (its requests get 503).
func (l *listener) track(c net.Conn) net.Conn {
	tc := &trackedConn{}
	if !l.trackIn(c, tc) {
		return nil
	}
	return tc
}

// trackIn is track with tc as the tracked connection's storage (a raw
// connection's is part of its leanConn); false when c was refused (and
// closed).
func (l *listener) trackIn(c net.Conn, tc *trackedConn) bool {
	var client netip.Addr
	if rc, ok := c.(*rawConn); ok {
		client = rc.remote.Addr() // without allocating a net.Addr
	} else {
		client = peerAddr(c.RemoteAddr())
	}
	place, over, ok := l.srv.conns.admit(client, l.exempt(client))
	if !ok {
		l.srv.log.Debug("connection refused", "listener", l.key, "remote", c.RemoteAddr().String(), "reason", reasonPerClient)
		_ = c.Close()
		return false
	}
	if over && l.shedIdle() {
		over = false
	}
	tc.Conn, tc.place, tc.over = c, place, over
	return true
}

// errQUICRefused refuses a QUIC connection at its handshake.
var errQUICRefused = errors.New("connection limit reached")

// quicConnContext is the quic.Transport's ConnContext for an HTTP/3
// listener: QUIC connections count against maxConnections and the
// per-client limit as TCP ones do, and are refused at the handshake
// (CONNECTION_REFUSED) beyond either, after trying to make room by
// closing a waiting TCP connection. The place is given back when the
// connection's context ends (closed, or its handshake failed). The
// client address is the one of the Initial packet, not yet verified: a
// spoofed address holds its place only until the handshake times out.
func (l *listener) quicConnContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	client := peerAddr(info.RemoteAddr)
	place, over, ok := l.srv.conns.admit(client, l.exempt(client))
	if !ok {
		l.srv.log.Debug("QUIC connection refused", "listener", l.key, "remote", info.RemoteAddr.String(), "reason", reasonPerClient)
		return ctx, errQUICRefused
	}
	if over && !l.shedIdle() {
		place.release()
		l.srv.log.Debug("QUIC connection refused", "listener", l.key, "remote", info.RemoteAddr.String(), "reason", "maxConnections")
		return ctx, errQUICRefused
	}
	context.AfterFunc(ctx, place.release)
	return ctx, nil
}

// shedIdle closes one of the listener's connections that waits for a
// request and reports whether there was one: an idle keep-alive HTTP/1.1
// connection first, then an HTTP/2 connection with no stream open, then a
// new connection that has sent no request yet; of each kind, the one that
// has waited longest (as nginx reuses the least recently used
// connection), so that a client that just had an answer keeps its
// connection. Under connection pressure they go first: they cost memory
// and a place but serve nobody now, and their clients reconnect when they
// have a request.
func (l *listener) shedIdle() bool {
	c, parked := l.lean.oldest(leanIdle)
	if parked {
		return true
	}
	if c == nil {
		c = l.idleHTTP.oldest()
	}
	if c == nil {
		if c, parked = l.lean.oldest(leanNew); parked {
			return true
		}
	}
	if c == nil {
		return false
	}
	// The socket itself: a TLS close_notify could wait on a peer that
	// does not read. The connection's server sees its read fail and ends.
	for {
		switch x := c.(type) {
		case *tls.Conn:
			c = x.NetConn()
			continue
		case *prefixConn:
			c = x.Conn
			continue
		}
		break
	}
	_ = c.Close()
	return true
}

// oldest takes the connection of s that has waited longest in state st
// (leanIdle or leanNew) out of its waiting queue, so that it is not shed
// twice, and returns it for the caller to close; nil if there is none. A
// parked one is closed here instead (parked true): its socket leaves the
// epoll instance with the close, so the set resumes its goroutine to end
// it.
func (s *leanSet) oldest(st leanState) (c net.Conn, parked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, ok := s.waitq[st-leanIdle].pop()
	if !ok {
		return nil, false
	}
	if lc.park == parkParked {
		s.unpark(lc)
		_ = lc.c.Close()
		go lc.run(wakeEnd)
		return nil, true
	}
	// Waiting on its goroutine, whose read fails with the close.
	return lc.c, false
}

// idleSet holds a listener's net/http connections that wait for a request
// (http.StateIdle): HTTP/2 connections with no stream open, and HTTP/1
// connections between requests; the one idle longest first.
type idleSet struct {
	mu sync.Mutex // protects the fields below and each idleNode's links
	q  waitQueue[net.Conn]
	// nodes are the idleNodes of the net/http servers' connections
	// (connState), from their first StateIdle to their StateClosed.
	nodes map[net.Conn]*idleNode
}

// idleNode is a connection's place in an idleSet: its HTTP/2
// connection's (h2Front.idle), or one connState keeps in nodes; v is the
// connection.
type idleNode = waitLink[net.Conn]

// connState is the http.Server's ConnState hook: it keeps idleSet.
func (s *idleSet) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[c]
	switch {
	case st == http.StateIdle && n == nil:
		if s.nodes == nil {
			s.nodes = map[net.Conn]*idleNode{}
		}
		n = &idleNode{v: c}
		s.nodes[c] = n
	case n == nil:
		return
	case st == http.StateClosed || st == http.StateHijacked:
		delete(s.nodes, c)
	}
	s.setIdleLocked(n, st == http.StateIdle)
}

// setIdle records whether n's connection is idle: an idle one goes to
// the tail of the queue (unless it is in it), a busy or closed one leaves
// it.
func (s *idleSet) setIdle(n *idleNode, idle bool) {
	s.mu.Lock()
	s.setIdleLocked(n, idle)
	s.mu.Unlock()
}

// setIdleLocked is setIdle, called with s.mu held.
func (s *idleSet) setIdleLocked(n *idleNode, idle bool) {
	switch {
	case idle && n.q == nil:
		s.q.push(n)
	case !idle:
		n.unqueue()
	}
}

// oldest takes the connection idle longest out of the queue, so that it
// is not shed twice, and returns it; nil if there is none.
func (s *idleSet) oldest() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := s.q.pop()
	return c
}
