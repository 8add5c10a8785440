package frontend

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/h2srv"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// This file is the front door's side of its HTTP/2 server (package
// h2srv): the connections that chose h2 by ALPN, and the cleartext ones
// that started with the HTTP/2 preface (h2c with prior knowledge), are
// served by an h2srv.Conn, whose streams are described as a
// pipeline.Request and run through serve, as the lean HTTP/1.1 loop does
// with its requests.

// h2Set tracks the HTTP/2 connections one generation serves, for its
// drain.
type h2Set struct {
	mu       sync.Mutex
	conns    map[*h2srv.Conn]struct{}
	draining bool
	wg       sync.WaitGroup // the connections' goroutines
}

// add registers hc, and its goroutine with wg; false when the set is
// draining.
func (s *h2Set) add(hc *h2srv.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	if s.conns == nil {
		s.conns = map[*h2srv.Conn]struct{}{}
	}
	s.conns[hc] = struct{}{}
	s.wg.Add(1)
	return true
}

// remove ends hc's registration when its goroutine is done.
func (s *h2Set) remove(hc *h2srv.Conn) {
	s.mu.Lock()
	delete(s.conns, hc)
	s.mu.Unlock()
	s.wg.Done()
}

// drain shuts the connections down gracefully (GOAWAY; each closes after
// its last stream); when ctx ends first, the rest are closed and their
// streams' contexts end. It returns when all have ended.
func (s *h2Set) drain(ctx context.Context) {
	s.mu.Lock()
	s.draining = true
	for hc := range s.conns {
		// On goroutines of the connections' count: a GOAWAY to a client
		// that reads nothing waits up to the send timeout.
		s.wg.Go(hc.Shutdown)
	}
	s.mu.Unlock()
	waitOrForce(ctx, &s.wg, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for hc := range s.conns {
			hc.Close()
		}
	})
}

// serveH2 serves c, an HTTP/2 connection (a *tls.Conn that chose h2, or a
// cleartext *prefixConn that starts with the preface), with the current
// generation's settings; when that generation is being retired it tries
// its successor, and closes c when there is none. c gets TCP keep-alive
// probes: a stream that waits has no timeout of its own.
func (l *listener) serveH2(c net.Conn) {
	keepAliveOn(c)
	f := &h2Front{l: l, remote: c.RemoteAddr().String(), local: c.LocalAddr().String()}
	f.idle.v = c
	if ap, err := netip.ParseAddrPort(f.remote); err == nil {
		f.peer = ap.Addr().Unmap()
	}
	inner := c
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		f.tls = &st
		inner = tc.NetConn()
	}
	// A cleartext connection is read from its socket, after the bytes the
	// lean loop read (h2srv.Config.Socket): an idle one holds no buffer.
	nc := c
	var sock syscall.RawConn
	var buffered []byte
	if pc, ok := inner.(*prefixConn); ok {
		inner = pc.Conn
		if sc, ok := socketOf(inner); ok {
			nc, sock, buffered = inner, sc, pc.prefix
		}
	}
	if tc, ok := inner.(*trackedConn); ok {
		f.over = tc.over
	}
	for {
		g := l.cur.Load()
		set := g.set
		cfg := h2srv.Config{
			MaxConcurrentStreams: maxStreamsPerConn,
			MaxReadFrameSize:     maxReadFrameSize,
			StreamWindow:         streamWindow,
			ConnWindow:           connWindow,
			MaxHeaderListSize:    uint32(set.maxHeader),
			IdleTimeout:          set.idle,
			SendTimeout:          set.send,
			OnIdle:               f.onIdle,
			Log:                  l.srv.log,
			Socket:               sock,
			Buffered:             buffered,
		}
		hc := h2srv.NewConn(nc, cfg, f.serveStream)
		if g.h2.add(hc) {
			go func() {
				defer g.h2.remove(hc)
				hc.Serve()
				l.idleHTTP.setIdle(&f.idle, false)
			}()
			return
		}
		if l.cur.Load() == g {
			_ = c.Close() // shutting down
			return
		}
	}
}

// socketOf returns the socket of c, a connection as accepted (a
// *trackedConn over a TCP connection).
func socketOf(c net.Conn) (syscall.RawConn, bool) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return nil, false
	}
	sc, ok := tc.Conn.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	return raw, err == nil
}

// h2Front is what the streams of one HTTP/2 connection share.
type h2Front struct {
	l             *listener
	over          bool // accepted beyond Limits.MaxConnections
	remote, local string
	peer          netip.Addr
	tls           *tls.ConnectionState // nil over cleartext
	// conn is the connection's pipeline state (pipeline.Request.Conn).
	conn pipeline.Conn
	// idle is the connection's place in the listener's idleHTTP while
	// it has no stream open.
	idle idleNode
}

// onIdle is the connection's h2srv.Config.OnIdle: it keeps its place in
// the listener's idleHTTP.
func (f *h2Front) onIdle(idle bool) { f.l.idleHTTP.setIdle(&f.idle, idle) }

// serveStream serves one stream: it counts against maxConnections as a
// request in flight over the multiplexed connections (503.2 beyond it),
// and runs through serve.
func (f *h2Front) serveStream(hs *h2srv.Stream) {
	start := time.Now()
	l := f.l
	s := l.srv
	n := s.streams.Add(1)
	if m := s.conns.max.Load(); m > 0 && n > m {
		s.streams.Add(-1)
		s.log.Debug("request refused: too many HTTP/2 and HTTP/3 requests in flight", "remote", f.remote, "limit", m)
		pages.Status(hs, http.StatusServiceUnavailable, 2, "")
		return
	}
	st := statePool.Get().(*reqState)
	// serve counts the request out of the streams in flight before it
	// sends the answer's end (leaveStreams), so a client that has its
	// answer never finds it still counted; after a panic, st (not given
	// back) is counted out here.
	st.stream = true
	defer func() {
		if st != nil {
			st.leaveStreams(s)
		}
	}()
	f.fill(&st.req, hs)
	st.ctx = hs.Context()
	var w http.ResponseWriter = hs
	var body io.Reader = hs
	if idle := time.Duration(s.hijacked.idle.Load()); idle > 0 && hs.Method == http.MethodConnect && hs.Protocol != "" {
		t, ctx := s.newTunnel(hs.Context(), idle, f.remote)
		t.body = hs
		defer t.stop()
		st.ctx, w, body = ctx, &tunnelWriter{ResponseWriter: hs, t: t}, &tunnelBody{ReadCloser: hs, t: t}
		t.start()
	}
	if st.req.ContentLength != 0 {
		st.src, st.ctl = body, hs
	}
	// serve ends the answer, a tunnel's too (its END_STREAM), before it
	// reports the request.
	s.serve(l, st, w, serveOpts{start: start, over: f.over, fin: hs})
	st.leaveStreams(s) // answered without an application (no site, ACME)
	st.release()
	st = nil
}

// fill describes the stream's request for serve.
func (f *h2Front) fill(pr *pipeline.Request, hs *h2srv.Stream) {
	pr.Method, pr.Host, pr.Proto = hs.Method, hs.Authority, "HTTP/2.0"
	path, query, _ := strings.Cut(hs.Path, "?")
	pr.RawQuery = query
	h := hs.Fields
	if hs.Protocol != "" {
		// An extended CONNECT's protocol, where the stages and the app
		// look for it (see isTunnel).
		h[":protocol"] = []string{hs.Protocol}
	}
	pr.Header = pipeline.HTTPHeader(h)
	pr.RemoteAddr, pr.LocalAddr = f.remote, f.local
	f.l.describe(pr, path, f.peer)
	pr.ContentLength = hs.ContentLength
	if hs.Trailer != nil {
		pr.Trailer = pipeline.HTTPHeader(hs.Trailer) // filled once the body is read
	}
	pr.TLS = f.tls
	pr.Conn = &f.conn
}
