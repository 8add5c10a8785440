package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

var errCanceled = errors.New("start canceled")

// startAttempts is how many times a start is tried when the process lost
// its port (ANCM V2 tries twice).
const startAttempts = 3

// run is the owner goroutine of pr: it launches the process, waits until it
// is ready, failed or was retired, serves until it exits or is retired,
// drains and stops it, reaps it and reports every step; it alone writes
// pr.state. When the process exited while starting because it lost its
// random port (see lostPort), the start is tried again on a new port, up to
// startAttempts in all, and only the last failure counts toward the
// rapid-fail limit; each new attempt is a new process in the same slot,
// owned by the same goroutine.
func (p *Pool) run(pr *process) {
	var earlier []byte
	for attempt := 1; ; attempt++ {
		if err := p.spawn(pr); err != nil {
			p.finish(pr, pr.state)
			p.startFailed(pr, err)
			return
		}
		res, conn := p.awaitReady(pr)
		if res == readyOK {
			res = p.markReady(pr, conn)
			if res == readyOK {
				pr.result <- nil
				p.serve(pr)
				return
			}
		}
		switch res {
		case readyCanceled:
			p.setState(pr, stateStopping)
			p.stopSequence(pr)
			p.finish(pr, p.reap(pr))
			pr.result <- upstream.ErrShuttingDown
			return
		case readyTimeout:
			reason := fmt.Sprintf("not listening on port %d after %s", pr.port, pr.spec.StartupTimeout)
			if v6LoopbackOnly(pr.port, pr.pid) {
				reason = fmt.Sprintf("listening on [::1]:%d only, not on 127.0.0.1:%d, after %s: the app must listen on 127.0.0.1 (IPv4 loopback), where Gatehouse connects; bind 127.0.0.1 rather than localhost",
					pr.port, pr.port, pr.spec.StartupTimeout)
			}
			p.log.Warn("killing process that did not become ready", "pid", pr.pid, "port", pr.port,
				"startup_timeout", pr.spec.StartupTimeout, "reason", reason)
			_ = pr.signal(syscall.SIGKILL)
			p.finish(pr, p.reap(pr))
			p.startFailed(pr, &upstream.StartError{
				Command:  pr.command,
				Reason:   reason,
				ExitCode: -1,
				Output:   string(joinCapped(earlier, pr.out.captured())),
			})
			return
		}
		// readyExited
		p.finish(pr, p.reap(pr))
		out := joinCapped(earlier, pr.out.captured())
		if attempt < startAttempts && !pr.fixed && !pr.spec.SocketActivation && lostPort(pr.out.captured(), pr.port) {
			p.log.Warn("process exited during startup and its port is taken; retrying on a new port",
				"pid", pr.pid, "port", pr.port, "attempt", attempt)
			if npr := p.retry(pr); npr != nil {
				earlier, pr = out, npr
				continue
			}
			pr.result <- upstream.ErrShuttingDown
			return
		}
		se := &upstream.StartError{Command: pr.command, Reason: "process exited during startup",
			ExitCode: pr.exitCode, Signal: pr.exitSig, Output: string(out)}
		if pr.oom != "" {
			se.Reason = oomReason(pr.oom)
		}
		if pr.exitSig != "" {
			se.ExitCode = -1
		}
		p.startFailed(pr, se)
		return
	}
}

// lostPort reports whether a process that exited during startup did so
// because its port was taken: its output says so (EADDRINUSE, as Go, .NET,
// Node.js, Python and Java print it), or someone else holds the port now.
// The output is the robust signal: what took the port (often an outgoing
// connection given it as its local port) may be gone by the time the exit
// is seen, and the port free again.
func lostPort(output []byte, port int) bool {
	out := bytes.ToLower(output)
	return bytes.Contains(out, []byte("address already in use")) || bytes.Contains(out, []byte("eaddrinuse")) ||
		!portFree(port)
}

// setState is setStateLocked under Pool.mu, for the owner.
func (p *Pool) setState(pr *process, s procState) {
	p.mu.Lock()
	pr.setStateLocked(s)
	p.mu.Unlock()
}

// serve is the ready part of pr's life: it ends when the process exits on
// its own or, once the pool asks to retire it, after the drain and the stop.
func (p *Pool) serve(pr *process) {
	select {
	case <-pr.exited:
	case <-pr.stop:
		p.mu.Lock()
		drain := pr.ask.drain
		if drain {
			pr.setStateLocked(stateDraining)
		} else {
			pr.setStateLocked(stateStopping)
		}
		p.mu.Unlock()
		if drain {
			p.drain(pr)
		}
		p.stopSequence(pr)
	}
	p.finish(pr, p.reap(pr))
}

// drain lets a recycled process finish its leases (until none is
// outstanding, DrainTimeout, a request to stop at once, or its exit) and
// then marks it stopping.
func (p *Pool) drain(pr *process) {
	timer := time.NewTimer(pr.spec.DrainTimeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if pr.outstanding == 0 {
			p.mu.Unlock()
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
			continue
		case <-timer.C:
		case <-pr.drainStop:
		case <-pr.exited:
		}
		break
	}
	p.mu.Lock()
	pr.setStateLocked(stateStopping)
	n := pr.outstanding
	p.mu.Unlock()
	if n > 0 {
		p.log.Warn("stopping recycled process with requests in flight", "pid", pr.pid, "outstanding", n)
	}
}

// reap waits for the exit, marks the process exited (its leases learn at
// once), kills what is left of the process group while the exited child
// still holds the group id (so no other process can be signalled by
// mistake), reaps the child and drains its output. It returns the state the
// process had when its exit was seen.
func (p *Pool) reap(pr *process) procState {
	<-pr.exited
	prev := pr.state
	p.setState(pr, stateExited)
	if pr.waitErr == nil {
		_ = syscall.Kill(-pr.pid, syscall.SIGKILL) // grandchildren; ESRCH when none are left
	}
	pr.oom = pr.cg.oomCause()
	// Before the reap: the zombie keeps the group id from being reused.
	pr.spec.Keeper.Remove(pr.pid)
	_ = pr.cmd.Wait() // the status is read from ProcessState below

	if !pr.out.drain(drainBound) {
		p.log.Warn("app output still open after the process group was killed; closed it", "pid", pr.pid)
	}
	if pr.notify != nil {
		pr.notify.close()
	}
	pr.cg.remove()
	pr.exitCode, pr.exitSig = exitStatus(pr.cmd.ProcessState)
	pr.uptime = time.Since(pr.started)
	return prev
}

// finish applies pr's end to the pool: out of its slot and the retiring set,
// a crash counted in the rapid-fail window. prev is the state in which its
// exit was seen (or its launch ended). It reports the exit (if the process
// ran) and closes done.
func (p *Pool) finish(pr *process, prev procState) {
	p.mu.Lock()
	pr.setStateLocked(stateReaped)
	delete(p.retiring, pr)
	var cause ExitCause
	var tripped *upstream.RapidFailError
	switch {
	case pr.ask != nil:
		cause = pr.ask.cause
	case prev == stateReady:
		cause = CauseCrash
		if pr.slot < len(p.slots) && p.slots[pr.slot].cur == pr {
			p.slots[pr.slot].cur = nil
		}
		p.crashes++
		tripped = p.fails.record(p.now(), p.spec.RapidFailsPerMinute, pr.exitDesc())
	case prev == stateStarting:
		cause = CauseStartFailure
	}
	if pr.oom != "" {
		cause = CauseOOM
	}
	if pr.pid != 0 {
		p.lastExit = ExitInfo{PID: pr.pid, Code: pr.exitCode, Signal: pr.exitSig, Cause: cause, Time: time.Now()}
	}
	p.broadcastLocked()
	p.mu.Unlock()

	if pr.pid != 0 {
		p.emit(&pr.spec, Event{Kind: ProcessExited, Slot: pr.slot, PID: pr.pid, Port: pr.port,
			Took: pr.uptime, ExitCode: pr.exitCode, Signal: pr.exitSig, Cause: cause, Detail: pr.oom})
	}
	if tripped != nil {
		p.emit(&pr.spec, Event{Kind: RapidFailTripped, Slot: pr.slot, PID: pr.pid, Err: tripped})
	}
	close(pr.done)
}

// startFailed takes a failed start out of its slot and, unless it was
// canceled, records the failure for waiters and the rapid-fail window and
// reports it.
func (p *Pool) startFailed(pr *process, err error) {
	p.mu.Lock()
	if pr.slot < len(p.slots) {
		s := p.slots[pr.slot]
		if s.cur == pr {
			s.cur = nil
		}
		if s.next == pr {
			s.next = nil
		}
	}
	canceled := pr.ask != nil || errors.Is(err, errCanceled)
	var tripped *upstream.RapidFailError
	if !canceled {
		p.failSeq++
		p.startErr = err
		p.startErrAt = time.Now()
		desc := err.Error()
		if pr.pid != 0 {
			desc = pr.exitDesc()
		}
		tripped = p.fails.record(p.now(), p.spec.RapidFailsPerMinute, desc)
	}
	p.broadcastLocked()
	p.mu.Unlock()
	if canceled {
		pr.result <- upstream.ErrShuttingDown
		return
	}
	p.emit(&pr.spec, Event{Kind: StartFailed, Slot: pr.slot, PID: pr.pid, Port: pr.port, Err: err})
	if tripped != nil {
		p.emit(&pr.spec, Event{Kind: RapidFailTripped, Slot: pr.slot, PID: pr.pid, Err: tripped})
	}
	pr.result <- err
}

// retry replaces pr in its slot with a fresh process for another attempt,
// or returns nil if pr was retired meanwhile.
func (p *Pool) retry(pr *process) *process {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.ask != nil || p.closed || pr.slot >= len(p.slots) {
		return nil
	}
	s := p.slots[pr.slot]
	npr := newProcess(pr.slot, pr.spec)
	npr.result = pr.result // Recycle waits on the first attempt's channel
	switch {
	case s.cur == pr:
		s.cur = npr
	case s.next == pr:
		s.next = npr
	default:
		return nil
	}
	return npr
}

// markReady makes pr ready (or, when Recycle started it as a slot's next,
// swaps it in and asks the process it replaces to retire), keeping conn,
// the readiness probe's connection (or nil), for its first lease. It
// returns readyOK, or what stopped it: readyCanceled if the pool asked to
// retire it, readyExited if it exited just as it became ready; conn is
// closed then.
func (p *Pool) markReady(pr *process, conn net.Conn) readiness {
	p.mu.Lock()
	if pr.ask != nil {
		p.mu.Unlock()
		closeConn(conn)
		return readyCanceled
	}
	select {
	case <-pr.exited:
		p.mu.Unlock()
		closeConn(conn)
		return readyExited
	default:
	}
	pr.probeConn = conn
	pr.setStateLocked(stateReady)
	pr.readyAt = time.Now()
	pr.leaseCap = p.spec.AppPool.Recycling.Requests
	p.lastReady = pr.readyAt
	recycled, replaced := false, 0
	if pr.slot < len(p.slots) && p.slots[pr.slot].next == pr {
		s := p.slots[pr.slot]
		old := s.cur
		s.cur, s.next = pr, nil
		recycled = true
		if old != nil {
			replaced = old.pid
			p.retireLocked(old, CauseRecycle, true)
		}
	}
	p.broadcastLocked()
	p.mu.Unlock()

	p.emit(&pr.spec, Event{Kind: ProcessReady, Time: pr.readyAt, Slot: pr.slot, PID: pr.pid, Port: pr.port,
		Took: pr.readyAt.Sub(pr.started)})
	if recycled {
		p.emit(&pr.spec, Event{Kind: ProcessRecycled, Slot: pr.slot, PID: pr.pid, Port: pr.port, Replaced: replaced})
	}
	return readyOK
}

// retireLocked asks pr's owner to take it out of service for cause: a
// starting process is stopped, a ready one is drained first if drain is
// set and DrainTimeout > 0, and then stopped. It only sends the request
// (ask, closing stop); the owner changes the state. A later request without
// drain turns a drain into a stop at once (closing drainStop); other later
// requests change nothing. The caller takes pr out of its slot.
func (p *Pool) retireLocked(pr *process, cause ExitCause, drain bool) {
	switch {
	case pr.state == stateReaped: // its owner is done with it
	case pr.ask == nil:
		pr.ask = &retireRequest{cause: cause, drain: drain && pr.spec.DrainTimeout > 0}
		p.retiring[pr] = struct{}{}
		close(pr.stop)
	case pr.ask.drain && !drain:
		pr.ask.drain = false
		close(pr.drainStop)
	}
}

// closeConn closes c unless it is nil.
func closeConn(c net.Conn) {
	if c != nil {
		c.Close()
	}
}
