package batchconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// guard turns a read that would wait for ever on b (the bytes it waits for
// were lost) into a failure.
func guard(t *testing.T, b net.Conn) {
	if err := b.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// countingConn counts the writes that reach it.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestGathers checks that writes made without blocking in between reach
// the socket as one write. With one P the writer goroutine runs only once
// the writing goroutine blocks.
func TestGathers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b := tcpPair(t)
	cc := &countingConn{Conn: a}
	c := New(cc)
	want := []byte("HEADERS|DATA|TRAILERS")
	for _, piece := range bytes.SplitAfter(want, []byte("|")) {
		if n, err := c.Write(piece); n != len(piece) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if n := cc.writes.Load(); n != 1 {
		t.Errorf("%d writes reached the socket, want 1", n)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestConcurrentWritesWhole checks that the bytes of concurrent Writes,
// some larger than the buffer, arrive in order and not interleaved.
func TestConcurrentWritesWhole(t *testing.T) {
	a, b := tcpPair(t)
	guard(t, b)
	c := New(a)
	const writers, each = 4, 20
	sizes := []int{10, 1000, 70000, maxPending + 12345}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				size := sizes[(w+i)%len(sizes)]
				msg := make([]byte, 8+size)
				binary.BigEndian.PutUint32(msg, uint32(size))
				binary.BigEndian.PutUint32(msg[4:], uint32(w))
				for j := range size {
					msg[8+j] = byte(w)
				}
				if _, err := c.Write(msg); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	read := make(chan error, 1)
	go func() {
		var hdr [8]byte
		for range writers * each {
			if _, err := io.ReadFull(b, hdr[:]); err != nil {
				read <- err
				return
			}
			size, w := binary.BigEndian.Uint32(hdr[:]), hdr[7]
			body := make([]byte, size)
			if _, err := io.ReadFull(b, body); err != nil {
				read <- err
				return
			}
			if i := bytes.IndexFunc(body, func(r rune) bool { return r != rune(w) }); i >= 0 {
				read <- errors.New("message interleaved with another")
				return
			}
		}
		read <- nil
	}()
	wg.Wait()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCloseFlushes checks that Close writes what was accepted, even after
// a write deadline in the past (as tls.Conn sets after its close_notify),
// before the connection closes.
func TestCloseFlushes(t *testing.T) {
	// One P: the deadline is set before the writer runs.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b := tcpPair(t)
	guard(t, b)
	c := New(a)
	want := bytes.Repeat([]byte("x"), 100000)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1000)
	if _, err := io.ReadFull(b, first); err != nil {
		t.Fatalf("the bytes accepted before the deadline were not written: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	rest, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
	if err := <-done; err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
}

// failingConn fails every write.
type failingConn struct {
	net.Conn
	err error
}

func (c *failingConn) Write([]byte) (int, error) { return 0, c.err }

// TestErrorReported checks that a failed write is reported by the next
// Write and by Close.
func TestErrorReported(t *testing.T) {
	a, _ := tcpPair(t)
	boom := errors.New("boom")
	c := New(&failingConn{Conn: a, err: boom})
	if _, err := c.Write([]byte("accepted")); err != nil {
		t.Fatalf("first Write: %v", err)
	}
	// The writer fails in its own time: wait for it to end.
	c.mu.Lock()
	for c.writing {
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
	}
	c.mu.Unlock()
	if _, err := c.Write([]byte("more")); !errors.Is(err, boom) {
		t.Errorf("Write after the failure = %v, want %v", err, boom)
	}
	if err := c.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want %v", err, boom)
	}
}

// TestBackpressureDeadline checks that a Write that finds the buffer full
// waits, and gives up at its write deadline having accepted what fit;
// Close then ends the blocked writer.
func TestBackpressureDeadline(t *testing.T) {
	a, _ := net.Pipe() // nobody reads: the writer blocks
	c := New(a)
	if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3*maxPending)
	n, err := c.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want a deadline error", n, err)
	}
	if n == 0 || n >= len(big) {
		t.Errorf("Write accepted %d of %d bytes, want part", n, len(big))
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("the deadline error %v is not a net.Error timeout", err)
	}
	if err := c.Close(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Close = %v, want the flush's deadline error", err)
	}
}

// TestDeadlineChangeWakes checks that a Write waiting for room sees a new
// deadline set while it waits.
func TestDeadlineChangeWakes(t *testing.T) {
	a, _ := net.Pipe()
	c := New(a)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 3*maxPending))
		errc <- err
	}()
	// Wait until the Write waits for room.
	for {
		c.mu.Lock()
		waiting := c.room != nil
		c.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	if err := c.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write = %v, want a deadline error", err)
	}
	_ = c.Close()
}
