package frontend

import (
	"errors"
	"log/slog"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRawAcceptNoDelay: a connection accepted raw has TCP_NODELAY, as one
// net accepts does.
func TestRawAcceptNoDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl, ok := withWait(ln).(*waitListener)
	if !ok {
		ln.Close()
		t.Skip("no duplicate of the listening socket")
	}
	defer wl.Close()
	l := &listener{raw: wl, srv: &Server{log: slog.New(slog.DiscardHandler)}}
	a := newRawAccepter(l)
	var c rawConn
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := wl.rc.Read(func(fd uintptr) bool {
		err = a.accept(fd, &c)
		return !errors.Is(err, unix.EAGAIN)
	}); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := unix.GetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil || v == 0 {
		t.Fatalf("accepted socket's TCP_NODELAY = %d, %v; want it on", v, err)
	}
}
