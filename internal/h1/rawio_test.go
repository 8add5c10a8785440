package h1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// TestWriteBeforeRead: a queued request is written by the next Read, which
// then returns the peer's answer; one too large for the socket buffer
// (the write would wait) is finished as an ordinary write first.
func TestWriteBeforeRead(t *testing.T) {
	t.Parallel()
	for _, size := range []int{100, 16 << 20} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan int, 1)
		go func() {
			c, err := ln.Accept()
			ln.Close()
			if err != nil {
				got <- -1
				return
			}
			defer c.Close()
			n, _ := io.CopyN(io.Discard, c, int64(size))
			got <- int(n)
			c.Write([]byte("answer"))
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		s := NewSocket(rc)
		s.WriteBeforeRead(bytes.Repeat([]byte("x"), size))
		buf := make([]byte, 64)
		n, err := s.Read(buf)
		if err != nil || string(buf[:n]) != "answer" {
			t.Errorf("size %d: read %q, %v; want the answer", size, buf[:n], err)
		}
		if m := <-got; m != size {
			t.Errorf("peer got %d bytes, want %d", m, size)
		}
		c.Close()
	}
}

// fdConn is an ArgRawConn on a socket's descriptor that never waits: a
// call whose function would wait fails.
type fdConn struct{ fd uintptr }

var errWouldWait = errors.New("would wait")

func (c *fdConn) Control(f func(fd uintptr)) error { f(c.fd); return nil }

func (c *fdConn) Read(f func(fd uintptr) bool) error  { return c.done(f(c.fd)) }
func (c *fdConn) Write(f func(fd uintptr) bool) error { return c.done(f(c.fd)) }

func (c *fdConn) ReadArg(f func(any, uintptr) bool, arg any) error  { return c.done(f(arg, c.fd)) }
func (c *fdConn) WriteArg(f func(any, uintptr) bool, arg any) error { return c.done(f(arg, c.fd)) }

func (c *fdConn) done(ok bool) error {
	if !ok {
		return errWouldWait
	}
	return nil
}

// TestArgRawConnAllocs: an Input and a Socket set up on an ArgRawConn (as
// a new lean connection's are) read and write without an allocation: no
// method value is bound for their read and write functions. (The read
// buffer comes from a pool, which the race detector empties now and then:
// less than one allocation per run.)
func TestArgRawConnAllocs(t *testing.T) {
	c, peer, rc := acceptedPair(t)
	fc := &fdConn{}
	if err := rc.Control(func(fd uintptr) { fc.fd = fd }); err != nil {
		t.Fatal(err)
	}
	var in Input
	var s Socket
	req, answer := []byte("x"), []byte("ok")
	got := make([]byte, 8)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := peer.Write(req); err != nil {
			t.Fatal(err)
		}
		in.Init(c, fc)
		s.Init(fc)
		// The byte is there once the peer's write returned (loopback).
		if ok, err := in.TryFill(); !ok || err != nil {
			t.Fatalf("TryFill = %v, %v", ok, err)
		}
		in.Discard(1)
		in.Release()
		if _, err := s.Write(answer); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, got[:len(answer)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 1 {
		t.Fatalf("%v allocations per connection's Input and Socket; want none", allocs)
	}
}
