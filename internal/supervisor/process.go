package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procState is where a process is in its life. Only the process's owner
// goroutine (Pool.run) writes it, under Pool.mu; anyone may read it under
// Pool.mu, and the owner may read it without. The order matters: a state
// from stateStopping on means the process takes no more leases (gone is
// closed).
//
//	starting → ready → (draining →) stopping → exited → reaped
//	starting → (stopping →) exited → reaped
//	starting → reaped (the launch failed or was canceled)
type procState int

const (
	stateStarting procState = iota // being launched, or launched and not yet ready
	stateReady                     // serving
	stateDraining                  // retired; finishing its leases
	stateStopping                  // retired; being stopped
	stateExited                    // wait(2) reported the exit; not yet reaped
	stateReaped                    // reaped, output drained, out of the pool
)

func (s procState) String() string {
	return [...]string{"starting", "ready", "draining", "stopping", "exited", "reaped"}[s]
}

const (
	dialTimeout = 100 * time.Millisecond // one readiness connect on loopback
	termGrace   = time.Second            // SIGTERM follows the shutdown event after at most this
	drainBound  = 2 * time.Second        // output drain after the group is killed
)

// process is one child. One goroutine, the owner (Pool.run), drives its
// whole life: launch, readiness, serving, drain, stop, reap, and it alone
// writes its state. Its helpers (the exit waiter, the output readers, the
// notify socket, the readiness probe, the shutdown event) end before the
// owner does. Others ask the owner to retire the process with
// Pool.retireLocked, a message (ask, and the stop and drainStop channels)
// the owner acts on; the owner applies each transition under Pool.mu and
// then emits an Event. The launch fields are set by the owner before the
// helpers start and are read-only afterwards.
type process struct {
	slot int
	spec Spec

	// Set once by startLaunch, under Pool.mu (for Processes).
	cmd     *exec.Cmd
	pid     int
	port    int
	addr    string
	token   string
	command string
	fixed   bool // port came from ASPNETCORE_PORT
	started time.Time
	out     *output
	notify  *notifier
	cg      *cgroup // the process's cgroup with its limits; nil without

	exited  chan struct{} // closed by the exit waiter once wait(2) reports the exit (not yet reaped)
	waitErr error         // the exit waiter's error, set before exited is closed
	done    chan struct{} // closed once the process is reaped, its output drained and the pool updated
	result  chan error    // the start's outcome, for Recycle (buffered 1)

	// Owner-local: set by reap.
	exitCode int
	exitSig  string
	uptime   time.Duration
	oom      string // why the OOM killer ended it (cgroup memory.events); "" if it did not

	// Protected by Pool.mu.
	state       procState      // written by the owner only
	gone        chan struct{}  // Lease.Exited: closed by the owner when stopping starts or at the exit
	ask         *retireRequest // the pool's request to retire it; nil while none
	stop        chan struct{}  // closed with the first request
	drainStop   chan struct{}  // closed when a request to drain becomes one to stop at once
	outstanding int
	requests    int // leases handed out
	leaseCap    int // leases after which it takes no more, so that a recycle replaces it; 0 = no cap
	readyAt     time.Time
	probeConn   net.Conn // the readiness probe's connection, until the first lease takes it or the process is retired
	// releaseFn is every lease's release (Pool.release of it), made by
	// the first lease: one function per process, not one per request.
	releaseFn func()
}

// retireRequest is what the pool asks of a process's owner: take it out of
// service for cause, after draining its leases if drain is set.
type retireRequest struct {
	cause ExitCause
	drain bool
}

func newProcess(slot int, spec Spec) *process {
	return &process{
		slot:      slot,
		spec:      spec,
		exited:    make(chan struct{}),
		done:      make(chan struct{}),
		stop:      make(chan struct{}),
		result:    make(chan error, 1),
		gone:      make(chan struct{}),
		drainStop: make(chan struct{}),
	}
}

// setStateLocked moves pr to s; the owner calls it with Pool.mu held. From
// stateStopping on, leases learn that the process is gone.
func (pr *process) setStateLocked(s procState) {
	if s >= stateStopping && pr.state < stateStopping {
		close(pr.gone)
	}
	if s > stateReady {
		// Retired before any lease took it: an open connection on which no
		// request comes would hold up the app's graceful shutdown.
		closeConn(pr.probeConn)
		pr.probeConn = nil
	}
	pr.state = s
}

// runningLocked reports whether pr is ready and not yet retired or exited.
func (pr *process) runningLocked() bool {
	return pr != nil && pr.state == stateReady
}

// servingLocked reports whether pr may get new leases: it runs and has not
// been given its leaseCap yet.
func (pr *process) servingLocked() bool {
	return pr.runningLocked() && (pr.leaseCap == 0 || pr.requests < pr.leaseCap)
}

// shownStateLocked is pr's state as Processes reports it: a process the
// pool asked to retire shows as draining or stopping at once, before its
// owner acts on the request.
func (pr *process) shownStateLocked() procState {
	switch {
	case pr.ask == nil || pr.state > stateReady:
		return pr.state
	case pr.ask.drain && pr.state == stateReady:
		return stateDraining
	default:
		return stateStopping
	}
}

// signal sends sig to the process group. Only the owner calls it, and never
// once the exit was seen, so a reused pid cannot be hit.
func (pr *process) signal(sig syscall.Signal) error {
	if pr.state >= stateExited || pr.pid == 0 {
		return os.ErrProcessDone
	}
	return syscall.Kill(-pr.pid, sig)
}

// exitDesc describes the exit for logs and RapidFailError.
func (pr *process) exitDesc() string {
	if pr.oom != "" {
		return fmt.Sprintf("pid %d killed by %s after %s; %s", pr.pid, pr.exitSig, pr.uptime.Round(time.Millisecond), pr.oom)
	}
	if pr.exitSig != "" {
		return fmt.Sprintf("pid %d killed by %s after %s", pr.pid, pr.exitSig, pr.uptime.Round(time.Millisecond))
	}
	return fmt.Sprintf("pid %d exited with code %d after %s", pr.pid, pr.exitCode, pr.uptime.Round(time.Millisecond))
}

type readiness int

const (
	readyOK readiness = iota
	readyExited
	readyTimeout
	readyCanceled
)

// awaitReady is the readiness select: ready, exited, startup timeout, or
// stopped while starting. When a connect probe found the process ready, it
// also returns the probe's connection (readyOK only), which the caller
// owns.
func (p *Pool) awaitReady(pr *process) (res readiness, conn net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var probed net.Conn // written by the probe loop before it closes ready
	var wg sync.WaitGroup
	wg.Go(func() {
		var ok bool
		if ok, probed = p.probeLoop(ctx, pr); ok {
			close(ready)
		}
	})
	defer func() {
		cancel()
		wg.Wait()
		if res != readyOK && probed != nil {
			probed.Close()
			conn = nil
		}
	}()

	timer := time.NewTimer(max(pr.spec.StartupTimeout, 0))
	defer timer.Stop()
	select {
	case <-ready:
		return readyOK, probed
	case <-pr.exited:
		return readyExited, nil
	case <-pr.stop:
		return readyCanceled, nil
	case <-timer.C:
	}
	cancel()
	wg.Wait()
	select {
	case <-ready:
		return readyOK, probed
	default:
	}
	// Last chance, so that 0 means "check once".
	cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
	defer ccancel()
	if ok, c := p.probeOnce(cctx, pr); ok {
		return readyOK, c
	}
	select {
	case <-pr.exited:
		return readyExited, nil
	default:
		return readyTimeout, nil
	}
}

// probeLoop polls readiness until it holds (true, with the connect
// probe's connection if there was one) or ctx ends (false).
func (p *Pool) probeLoop(ctx context.Context, pr *process) (bool, net.Conn) {
	if pr.notify != nil {
		select {
		case <-pr.notify.ready:
		case <-ctx.Done():
			return false, nil
		}
	}
	start := time.Now()
	t := time.NewTimer(probeMin) // Reset before each wait (Go ≥1.23: no stale tick)
	defer t.Stop()
	for {
		if ok, c := p.probe(ctx, pr); ok {
			return true, c
		}
		t.Reset(probeDelay(time.Since(start)))
		select {
		case <-ctx.Done():
			return false, nil
		case <-t.C:
		}
	}
}

func (p *Pool) probeOnce(ctx context.Context, pr *process) (bool, net.Conn) {
	if pr.notify != nil {
		select {
		case <-pr.notify.ready:
		default:
			return false, nil
		}
	}
	return p.probe(ctx, pr)
}

// probe checks once: the readiness path answers 2xx, or else the port
// accepts a connection. A connect probe that finds an HTTP/1.1 app ready
// returns its connection, on which nothing was sent: the first request
// takes it (Lease.GiveConn) instead of connecting again.
func (p *Pool) probe(ctx context.Context, pr *process) (bool, net.Conn) {
	if path := pr.spec.ReadinessProbe; path != "" {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pr.addr+path, nil)
		if err != nil {
			return false, nil
		}
		req.Header.Set("MS-ASPNETCORE-TOKEN", pr.token)
		resp, err := p.eventClient(pr).Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 300 &&
			(pr.spec.SocketActivation || listenerInGroup(pr.port, pr.pid)), nil
	}
	if pr.spec.SocketActivation {
		// Gatehouse bound the socket and it listens already: connections
		// wait in its backlog until the app accepts, so the app is ready
		// once it runs. A connect would only hand it an empty connection.
		return true, nil
	}
	// No TCP keep-alive, as the proxy's own connections to the app.
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp4", pr.addr)
	if err != nil {
		return false, nil
	}
	if !listenerInGroup(pr.port, pr.pid) {
		c.Close()
		return false, nil
	}
	if pr.spec.H2C {
		// An h2c app's connections are made by the proxy's HTTP/2 client,
		// which dials its own.
		c.Close()
		return true, nil
	}
	return true, c
}
