package upstream

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestReleaseClosesConnNotTaken(t *testing.T) {
	ours, app := net.Pipe()
	defer app.Close()
	released := 0
	l := NewLease("127.0.0.1:1", "", 1, nil, func() { released++ })
	l.GiveConn(ours, time.Now())
	l.Release()
	l.Release()
	if released != 1 {
		t.Errorf("release ran %d times, want 1", released)
	}
	app.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := app.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("app side read %v, want EOF: the untaken connection was not closed", err)
	}
}

func TestTakeConnOnce(t *testing.T) {
	ours, app := net.Pipe()
	defer app.Close()
	defer ours.Close()
	l := NewLease("127.0.0.1:1", "", 1, nil, nil)
	if l.TakeConn() != nil {
		t.Fatal("TakeConn before GiveConn returned a connection")
	}
	l.GiveConn(ours, time.Now())
	if hc := l.TakeConn(); hc == nil || hc.Conn != ours {
		t.Fatalf("TakeConn = %v, want the given connection", hc)
	}
	if l.TakeConn() != nil {
		t.Error("TakeConn returned the connection twice")
	}
	l.Release() // must not close what was taken
	ours.SetWriteDeadline(time.Now().Add(time.Second))
	go app.Read(make([]byte, 1))
	if _, err := ours.Write([]byte("x")); err != nil {
		t.Errorf("the taken connection was closed by Release: %v", err)
	}
}
