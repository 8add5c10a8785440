package supervisor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestFirstLeaseGetsProbeConn checks that the readiness probe's connection
// goes to the first lease, open and unused, so the first request needs no
// connect of its own, and that no later lease gets one.
func TestFirstLeaseGetsProbeConn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "echo"))
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	hc := l.TakeConn()
	if hc == nil {
		t.Fatal("the first lease got no connection")
	}
	defer hc.Conn.Close()
	if got := hc.Conn.RemoteAddr().String(); got != l.Addr {
		t.Errorf("handed connection goes to %s, want %s", got, l.Addr)
	}
	hc.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(hc.Conn, "GET / HTTP/1.1\r\nHost: app\r\nMS-ASPNETCORE-TOKEN: %s\r\n\r\n", l.Token)
	res, err := http.ReadResponse(bufio.NewReader(hc.Conn), nil)
	if err != nil {
		t.Fatalf("request on the handed connection: %v", err)
	}
	defer res.Body.Close()
	var r echoReply
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.PID != l.PID || r.GotToken != l.Token {
		t.Errorf("reply %+v, lease pid %d", r, l.PID)
	}

	l2, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	if hc := l2.TakeConn(); hc != nil {
		hc.Conn.Close()
		t.Error("a second lease got a connection too")
	}
}

// TestProbeConnClosedWhenRetired checks that a probe connection no lease
// took is closed once the process leaves service: an open connection on
// which no request comes would hold up the app's graceful shutdown.
func TestProbeConnClosedWhenRetired(t *testing.T) {
	t.Parallel()
	for _, s := range []procState{stateDraining, stateStopping, stateExited} {
		t.Run(s.String(), func(t *testing.T) {
			ours, app := net.Pipe()
			defer app.Close()
			pr := newProcess(0, Spec{})
			pr.state = stateReady
			pr.probeConn = ours
			pr.setStateLocked(s)
			app.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := app.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("app side read %v, want EOF (closed)", err)
			}
			if pr.probeConn != nil {
				t.Error("probeConn still set")
			}
		})
	}
}

// TestH2CLeaseGetsNoProbeConn checks that an h2c app's probe connection is
// closed rather than handed over: the proxy's HTTP/2 client makes its own.
func TestH2CLeaseGetsNoProbeConn(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo", "GH_H2C=1")
	spec.H2C = true
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if hc := l.TakeConn(); hc != nil {
		hc.Conn.Close()
		t.Error("an h2c app's lease got the probe's connection")
	}
}

// TestLeaseAllocs: a lease on a ready process is one allocation (the
// Lease): its release function is the process's, made once.
func TestLeaseAllocs(t *testing.T) {
	p := &Pool{changed: make(chan struct{})}
	pr := newProcess(0, Spec{})
	pr.state = stateReady
	p.mu.Lock()
	held := p.leaseLocked(pr) // outstanding stays above 0: no broadcast
	p.mu.Unlock()
	defer held.Release()
	allocs := testing.AllocsPerRun(100, func() {
		p.mu.Lock()
		l := p.leaseLocked(pr)
		p.mu.Unlock()
		l.Release()
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per lease; want 1", allocs)
	}
}
