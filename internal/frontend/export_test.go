package frontend

import (
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// H3Addr returns the UDP address HTTP/3 is served on for a binding (tests only).
func (s *Server) H3Addr(binding string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.cfg.Sites {
		for _, b := range s.cfg.Sites[i].Bindings {
			if l := s.listeners[b.ListenerKey()]; b.Name == binding && l != nil && l.udp != nil {
				return l.udp.LocalAddr()
			}
		}
	}
	return nil
}

// SetLeanHTTP1 switches the lean HTTP/1.1 loop for listeners started
// afterwards (benchmarks only: not safe beside running servers).
func SetLeanHTTP1(on bool) { leanHTTP1 = on }

// ServeACMEChallenge has the server answer tls-alpn-01 handshakes (a
// ClientHello offering only acme-tls/1) with cert, as while a validation
// is under way (tests only; call before the first connection).
func (s *Server) ServeACMEChallenge(cert tls.Certificate) {
	s.acme.challengeTLS = &tls.Config{NextProtos: []string{acmeTLS1}, Certificates: []tls.Certificate{cert}}
	s.acme.cur.Store(&acmeState{})
}

// WaitingBatched counts the connections of s that wait for their next
// request by whether their writes are gathered (batchHTTP2) or not (tests
// only).
func (s *Server) WaitingBatched() (batched, plain int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		conns := l.idleHTTP.all()
		l.lean.mu.Lock()
		for lc := l.lean.conns; lc != nil; lc = lc.next {
			if lc.state == leanIdle {
				conns = append(conns, lc.c)
			}
		}
		l.lean.mu.Unlock()
		for _, c := range conns {
			if pc, ok := c.(*prefixConn); ok {
				c = pc.Conn
			}
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if tc, ok := c.(*trackedConn); ok && tc.batch.Load() != nil {
				batched++
			} else {
				plain++
			}
		}
	}
	return batched, plain
}

// LeanConns returns how many connections the lean loop tracks, and how
// many of them are parked (idle keep-alive, without a goroutine), over all
// listeners (tests only).
func (s *Server) LeanConns() (open, parked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.lean.mu.Lock()
		open += l.lean.nconns
		for _, lc := range l.lean.registered {
			if lc.park == parkParked {
				parked++
			}
		}
		l.lean.mu.Unlock()
	}
	return open, parked
}

// all returns s's connections, the one idle longest first (tests only).
func (s *idleSet) all() []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var conns []net.Conn
	for n := s.q.head; n != nil; n = n.next {
		conns = append(conns, n.v)
	}
	return conns
}

// LeanWaiting counts the lean connections that wait for a request, over
// all listeners: idle keep-alive ones, and new ones that have not sent
// their first (tests only).
func (s *Server) LeanWaiting() (idle, fresh int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.lean.mu.Lock()
		for lc := l.lean.conns; lc != nil; lc = lc.next {
			switch lc.state {
			case leanIdle:
				idle++
			case leanNew:
				fresh++
			}
		}
		l.lean.mu.Unlock()
	}
	return idle, fresh
}

// KeepAlives counts the open client connections of s by whether their
// socket has TCP keep-alive probes on (SO_KEEPALIVE): those the lean loop
// tracks, those net/http holds idle, and the hijacked ones (tests only).
func (s *Server) KeepAlives() (on, off int) {
	var conns []net.Conn
	s.mu.Lock()
	for _, l := range s.listeners {
		l.lean.mu.Lock()
		for lc := l.lean.conns; lc != nil; lc = lc.next {
			conns = append(conns, lc.c)
		}
		l.lean.mu.Unlock()
		conns = append(conns, l.idleHTTP.all()...)
	}
	s.mu.Unlock()
	s.hijacked.mu.Lock()
	for hc := range s.hijacked.conns {
		conns = append(conns, hc)
	}
	s.hijacked.mu.Unlock()
	for _, c := range conns {
		tc := tcpConnOf(c)
		if tc == nil {
			continue
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			continue
		}
		v := 0
		_ = rc.Control(func(fd uintptr) {
			v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		})
		if v != 0 {
			on++
		} else {
			off++
		}
	}
	return on, off
}

// LeanParking describes the lean connections registered in an idle set's
// epoll instance, over all listeners: by token, whether each is parked,
// and how many were marked woken (an event came while it served).
func (s *Server) LeanParking() (parked map[uint64]bool, woken int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parked = map[uint64]bool{}
	for _, l := range s.listeners {
		l.lean.mu.Lock()
		for t, lc := range l.lean.registered {
			parked[t] = lc.park == parkParked
			if lc.park == parkWoken {
				woken++
			}
		}
		l.lean.mu.Unlock()
	}
	return parked, woken
}

// LeanEvent delivers an event with token to every listener's idle set, as
// its epoll instance would, and reports which registered connections are
// parked right after it (tests only).
func (s *Server) LeanEvent(token uint64) (parked map[uint64]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parked = map[uint64]bool{}
	for _, l := range s.listeners {
		l.lean.ready([]uint64{token})
		l.lean.mu.Lock()
		for t, lc := range l.lean.registered {
			parked[t] = lc.park == parkParked
		}
		l.lean.mu.Unlock()
	}
	return parked
}

// SplicedBytes returns how many response body bytes the lean writer has
// moved with splice(2) since the process started (tests only).
func SplicedBytes() int64 { return splicedBytes.Load() }

// LeanPolled counts the sockets in the idle sets' epoll instances, over
// all listeners, as the kernel lists them (/proc/self/fdinfo; tests only).
func (s *Server) LeanPolled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.listeners {
		l.lean.mu.Lock()
		if p := l.lean.poll; p != nil {
			_ = p.rc.Control(func(fd uintptr) {
				b, _ := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(fd)))
				for line := range strings.Lines(string(b)) {
					if strings.HasPrefix(line, "tfd:") {
						n++
					}
				}
			})
		}
		l.lean.mu.Unlock()
	}
	return n
}

// RawConversions returns how many raw connections (cleartext, accepted
// outside Go's poller) moved into Go's poller since the process started
// (tests only).
func RawConversions() int64 { return rawConversions.Load() }
