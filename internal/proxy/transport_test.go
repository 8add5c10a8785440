package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestIdleTimeoutConn checks the inactivity rule with lazily moved
// deadlines: a Read in progress lives as long as Writes keep coming, and
// fails with a deadline error no sooner than timeout after the last one.
func TestIdleTimeoutConn(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	go io.Copy(io.Discard, peer) // ends when raw closes

	const timeout = 100 * time.Millisecond
	c := &idleTimeoutConn{Conn: raw, timeout: timeout, slack: timeout / 8}
	defer c.Close()
	readDone := make(chan time.Time, 1)
	var readErr error
	go func() {
		_, readErr = c.Read(make([]byte, 1)) // the peer never writes
		readDone <- time.Now()
	}()
	var last time.Time
	for range 6 { // 3×timeout of activity
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		last = time.Now()
		select {
		case at := <-readDone:
			t.Fatalf("read ended %v after the last write (%v), while writes went on", at.Sub(last), readErr)
		case <-time.After(timeout / 2):
		}
	}
	select {
	case at := <-readDone:
		if !errors.Is(readErr, os.ErrDeadlineExceeded) {
			t.Errorf("read error = %v, want a deadline error", readErr)
		}
		if idle := at.Sub(last); idle < timeout {
			t.Errorf("read timed out %v after the last write, want at least %v", idle, timeout)
		}
	case <-time.After(10 * timeout):
		t.Fatal("read did not time out")
	}
}
