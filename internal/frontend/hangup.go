package frontend

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// hangupAfter is how long a bodiless request on the lean loop runs before
// its connection is watched for the client going away. Shorter requests
// cost nothing for this: net/http instead reads in the background during
// every request.
const hangupAfter = time.Second

// hangup watches a lean connection for the client's FIN while a long
// request waits for the app: one goroutine peeks at the socket, and when
// the client has closed, the connection's context is cancelled, which ends
// the app exchange (the proxy closes its app connection, logs 499).
//
// Only bodiless requests are watched: while a body is being read the
// connection's reader is busy.
type hangup struct {
	mu       sync.Mutex // protects the fields below
	since    time.Time  // start of the current bodiless request; zero: none
	watching bool
	done     chan struct{} // closed when the watcher ended
}

// begin marks the start of a bodiless request.
func (h *hangup) begin(t time.Time) {
	h.mu.Lock()
	h.since = t
	h.mu.Unlock()
}

// end marks the request's end and stops a watcher, waiting for it. The
// connection's read deadline is left in the past if one ran; the loop sets
// it again before reading.
func (h *hangup) end(lc *leanConn) {
	h.mu.Lock()
	h.since = time.Time{}
	watching, done := h.watching, h.done
	h.watching, h.done = false, nil
	h.mu.Unlock()
	if watching {
		lc.setReadDeadline(time.Unix(1, 0)) // wakes the peek
		<-done
	}
}

// check starts a watcher for lc's request if it has run for hangupAfter.
// Called by the leanSet's ticker.
func (h *hangup) check(lc *leanConn, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() || h.watching || lc.peekRaw == nil || now.Sub(h.since) < hangupAfter {
		return
	}
	h.watching, h.done = true, make(chan struct{})
	go lc.watchHangup(h.done)
}

// watchHangup is the watcher goroutine, owned by the request (end waits
// for it): it waits until the socket is readable and cancels lc's context
// if the client closed it.
func (lc *leanConn) watchHangup(done chan<- struct{}) {
	defer close(done)
	// A client that vanished without a FIN is found by the probes (see
	// listenConfig).
	keepAliveOn(lc.c)
	gone := false
	err := lc.peekRaw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case e == syscall.EAGAIN || e == syscall.EINTR:
			return false
		case e == nil && n == 0:
			gone = true // FIN: the client closed its side
		case e == syscall.ECONNRESET:
			gone = true
		}
		return true // data (a pipelined request) or an error: stop watching
	})
	if err == nil && !gone && lc.tls != nil {
		// Over TLS the client's close starts with a close_notify record:
		// read what came (the request is bodiless, so the connection's
		// reader is idle until end has waited for this goroutine). A
		// pipelined request stays buffered for the loop.
		if ferr := lc.in.Fill(); ferr != nil {
			var ne net.Error
			gone = !(errors.As(ferr, &ne) && ne.Timeout()) && !errors.Is(ferr, h1.ErrFull)
		}
	}
	if err == nil && gone {
		lc.l.srv.log.Debug("client went away during the request", "listener", lc.l.key, "remote", lc.remote)
		lc.ctx.Cancel()
	}
}

// watchLoop is the leanSet's ticker: twice a second it checks the busy
// connections for requests running long enough to watch, and closes the
// parked connections whose keep-alive timeout has passed (so a keep-alive
// timeout holds to within half a second). It ends when the set drains.
func (s *leanSet) watchLoop(stop <-chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(hangupAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			s.sweep(now)
			for lc := s.conns; lc != nil; lc = lc.next {
				if lc.state == leanActive {
					lc.hu.check(lc, now)
				}
			}
			s.mu.Unlock()
		}
	}
}
