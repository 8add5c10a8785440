package frontend

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serverSide accepts one connection on ln from a new client and returns
// both ends' server side as a RawConn and the client.
func serverSide(t *testing.T, ln net.Listener) (syscall.RawConn, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rc, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc, c
}

// TestIdlePollerBytesAtRegistration: registering (edge-triggered) a
// socket that already holds unread bytes raises an event at once, which
// the idle set relies on at a connection's first park; a socket with
// none raises its event when bytes come.
func TestIdlePollerBytesAtRegistration(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	full, fullClient := serverSide(t, ln)
	empty, emptyClient := serverSide(t, ln)
	if _, err := fullClient.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	// Wait until the bytes are in the server side's socket.
	var perr error
	if err := full.Control(func(fd uintptr) {
		_, perr = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10_000)
	}); err != nil || perr != nil {
		t.Fatal(err, perr)
	}

	p, err := newIdlePoller()
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan uint64, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.run(func(tokens []uint64) {
			for _, tok := range tokens {
				events <- tok
			}
		})
	}()
	defer func() { p.close(); <-done }()
	if err := p.register(empty, 2); err != nil {
		t.Fatal(err)
	}
	if err := p.register(full, 1); err != nil {
		t.Fatal(err)
	}
	next := func(what string) uint64 {
		select {
		case tok := <-events:
			return tok
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %s", what)
			return 0
		}
	}
	if tok := next("for the socket registered with bytes"); tok != 1 {
		t.Fatalf("first event: token %d, want 1 (the socket registered with bytes)", tok)
	}
	if _, err := emptyClient.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	if tok := next("for bytes after the registration"); tok != 2 {
		t.Fatalf("second event: token %d, want 2", tok)
	}
}
