package h1

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
)

// TestMayHoldMore: a read that fills the whole buffer may have left bytes
// in the socket (MayHoldMore), one that returns less took all there was;
// for TryFill, Fill and a direct Read alike.
func TestMayHoldMore(t *testing.T) {
	t.Parallel()
	c, peer, rc := acceptedPair(t)
	in := NewInput(c, rc)
	// send writes n bytes and waits until the socket holds them all (a
	// peek at least n long), so that one read can see them together.
	send := func(n int) {
		t.Helper()
		if _, err := peer.Write(bytes.Repeat([]byte("x"), n)); err != nil {
			t.Fatal(err)
		}
		var b [3 * BufSize]byte
		if err := rc.Read(func(fd uintptr) bool {
			m, _, _ := syscall.Recvfrom(int(fd), b[:n], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return m >= n
		}); err != nil {
			t.Fatal(err)
		}
	}
	send(BufSize + 100)
	if got, err := in.TryFill(); !got || err != nil {
		t.Fatalf("TryFill: %v, %v", got, err)
	}
	if !in.MayHoldMore() {
		t.Fatal("a TryFill that filled the buffer: MayHoldMore false")
	}
	in.Discard(len(in.Buffered()))
	if got, err := in.TryFill(); !got || err != nil || len(in.Buffered()) != 100 {
		t.Fatalf("TryFill: %v, %v, %d bytes", got, err, len(in.Buffered()))
	}
	if in.MayHoldMore() {
		t.Fatal("a TryFill that took the rest: MayHoldMore true")
	}
	if got, err := in.TryFill(); got || err == nil {
		// TryFill needs an empty buffer: this one holds 100 bytes.
		t.Fatalf("TryFill with bytes buffered: %v, %v", got, err)
	}
	send(BufSize)
	if err := in.Fill(); err != nil { // room for BufSize-100
		t.Fatal(err)
	}
	if !in.MayHoldMore() {
		t.Fatal("a Fill that filled the buffer: MayHoldMore false")
	}
	in.Discard(len(in.Buffered()))
	p := make([]byte, 2*BufSize)
	if n, err := in.Read(p); err != nil || n != 100 {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if in.MayHoldMore() {
		t.Fatal("a Read that took the rest: MayHoldMore true")
	}
	peer.Close()
	if _, err := in.Read(p); err != io.EOF {
		t.Fatalf("Read after the peer's close: %v", err)
	}
}

// acceptedPair returns the accepted end of a loopback TCP connection, its
// raw descriptor and the dialled end (the peer); all closed at the test's
// end.
func acceptedPair(t *testing.T) (c, peer net.Conn, rc syscall.RawConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err = c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return c, peer, rc
}
