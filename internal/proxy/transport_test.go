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
//
// The rule can only be judged when the writes really came less than
// timeout apart; on a loaded machine this goroutine may sleep far longer
// than asked, and then the deadline may rightly fire. Such a run proves
// nothing and is repeated with a longer timeout.
func TestIdleTimeoutConn(t *testing.T) {
	t.Parallel()
	for timeout := 100 * time.Millisecond; ; timeout *= 2 {
		gap := idleTimeoutRun(t, timeout)
		if gap < timeout {
			return
		}
		if timeout >= 3*time.Second {
			t.Fatalf("writes were %v apart even with a %v timeout: cannot judge the rule on this machine", gap, timeout)
		}
		t.Logf("writes were %v apart with a %v timeout: trying a longer one", gap, timeout)
	}
}

// idleTimeoutRun writes 6 times, timeout/2 apart, while a Read waits on an
// idleTimeoutConn, then waits for the Read to time out. It returns the
// longest span in which the writes' deadline updates may have been timeout
// apart; the rule is checked only when it is less than timeout.
func idleTimeoutRun(t *testing.T, timeout time.Duration) (gap time.Duration) {
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

	c := &idleTimeoutConn{Conn: raw, timeout: timeout, slack: timeout / 8}
	readDone := make(chan time.Time, 1)
	readEnded := make(chan struct{})
	defer func() { c.Close(); <-readEnded }()
	var readErr error
	// The Read moves the deadline at some time after prev; each Write at
	// some time between the instants taken just before and just after it.
	prev := time.Now()
	go func() {
		defer close(readEnded)
		_, readErr = c.Read(make([]byte, 1)) // the peer never writes
		readDone <- time.Now()
	}()
	var last time.Time // just before the last write
	var at time.Time   // when the read ended
	ended := false
	for range 6 { // 3×timeout of activity
		before := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		gap = max(gap, time.Since(prev))
		prev, last = before, before
		select {
		case at = <-readDone:
			ended = true
		case <-time.After(timeout / 2):
		}
		if ended {
			break
		}
	}
	if gap >= timeout {
		return gap
	}
	if !ended {
		select {
		case at = <-readDone:
		case <-time.After(10 * time.Second):
			t.Fatal("read did not time out")
		}
	}
	if !errors.Is(readErr, os.ErrDeadlineExceeded) {
		t.Errorf("read error = %v, want a deadline error", readErr)
	}
	if idle := at.Sub(last); idle < timeout {
		t.Errorf("read ended %v after the last write began, want at least %v (timeout)", idle, timeout)
	}
	return gap
}
