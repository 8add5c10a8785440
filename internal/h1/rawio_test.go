package h1

import (
	"bytes"
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
