package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/monoclock"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Recycle replaces every running process with a new one started from spec
// (nil = the current spec), overlapped: for each occupied slot a new
// process starts while the old one keeps serving; once the new one is ready
// it takes all new Acquires, and the old one finishes its leases (at most
// DrainTimeout) and is then stopped gracefully. Empty slots just start from
// the new spec next time. Recycle returns when every replacement is ready
// and every replaced process has exited, or when ctx ends (the work goes on).
//
// If a replacement fails to start, the old process of that slot keeps
// serving and Recycle returns the start error; the new spec stays in force
// for later starts. If Processes changed, slots are added (started on
// demand) or removed (their processes drained and stopped). With a port
// fixed by ASPNETCORE_PORT the old and new process cannot overlap: each old
// process is drained and stopped first, and the next Acquire starts the new
// one. Calls are serialised.
func (p *Pool) Recycle(ctx context.Context, spec *Spec) error {
	p.recycling.Add(1)
	defer p.recycling.Add(-1)
	p.recycle.Lock()
	defer p.recycle.Unlock()

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return upstream.ErrShuttingDown
	}
	if spec != nil {
		p.spec = normalise(*spec)
		p.resizeLocked(p.spec.Processes)
	}
	sp := p.spec
	_, fixed, _ := portFromEnv(sp.Env)
	p.log.Info("recycling app", "overlapped", !fixed)

	var olds, nexts []*process
	var err error
	for i, s := range p.slots {
		if s.next != nil { // left by a Recycle whose ctx ended
			p.retireLocked(s.next, CauseRecycle, false)
			s.next = nil
		}
		if s.cur == nil {
			continue
		}
		if fixed {
			olds = append(olds, s.cur)
			p.retireLocked(s.cur, CauseRecycle, true)
			s.cur = nil
			continue
		}
		if err = p.admitLocked(); err != nil {
			break
		}
		olds = append(olds, s.cur)
		pr := newProcess(i, sp)
		s.next = pr
		nexts = append(nexts, pr)
		p.wg.Go(func() { p.run(pr) })
	}
	p.liftLeaseCapsLocked()
	p.broadcastLocked()
	p.mu.Unlock()

	var dones []<-chan struct{}
	if fixed {
		for _, o := range olds {
			dones = append(dones, o.done)
		}
		return waitAll(ctx, dones)
	}
	for i, pr := range nexts {
		select {
		case e := <-pr.result:
			if e != nil {
				if err == nil {
					err = e
				}
				p.mu.Lock()
				p.liftLeaseCapsLocked() // the old process keeps serving
				p.broadcastLocked()
				p.mu.Unlock()
				continue
			}
			dones = append(dones, olds[i].done)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if werr := waitAll(ctx, dones); werr != nil {
		return werr
	}
	return err
}

// ReopenLogs starts a new stdout log file for every process that writes
// one (after logrotate moved the files away) and returns the errors
// joined.
func (p *Pool) ReopenLogs() error {
	p.mu.Lock()
	var outs []*output
	for _, s := range p.slots {
		for _, pr := range []*process{s.cur, s.next} {
			if pr != nil && pr.out != nil {
				outs = append(outs, pr.out)
			}
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, o := range outs {
		if err := o.reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Scale sets the number of processes (Spec.Processes; below 1 means 1)
// without replacing the running ones: added slots start on demand (or with
// Start), processes of removed slots drain and stop. The new number holds
// until a Recycle with a spec says otherwise. Scale waits for a Recycle
// under way.
func (p *Pool) Scale(n int) {
	p.recycle.Lock()
	defer p.recycle.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	n = max(n, 1)
	p.log.Info("scaling app", "processes", n, "was", len(p.slots))
	p.spec.Processes = n
	p.resizeLocked(n)
	p.broadcastLocked()
}

// liftLeaseCapsLocked lets every process that no replacement is starting
// for take leases again past its leaseCap: it keeps serving until the next
// recycle.
func (p *Pool) liftLeaseCapsLocked() {
	for _, s := range p.slots {
		if s.cur != nil && s.next == nil {
			s.cur.leaseCap = 0
		}
	}
}

// resizeLocked grows or shrinks the slots; removed slots' processes are
// drained and stopped.
func (p *Pool) resizeLocked(n int) {
	for len(p.slots) < n {
		p.slots = append(p.slots, &slot{})
	}
	for _, s := range p.slots[n:] {
		if s.cur != nil {
			p.retireLocked(s.cur, CauseRecycle, true)
		}
		if s.next != nil {
			p.retireLocked(s.next, CauseRecycle, false)
		}
	}
	p.slots = p.slots[:n]
	p.rr = 0
}

// idleLoop stops the processes once nothing used them for IdleTimeout: no
// lease outstanding, no caller waiting and no process starting. It is the
// pool's own goroutine and ends on Close.
func (p *Pool) idleLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p.mu.Lock()
		wait := time.Duration(-1)
		if idle := p.spec.IdleTimeout; idle > 0 && p.idleCandidateLocked() {
			left := idle - (monoclock.Now() - p.lastUse)
			if left <= 0 {
				p.log.Info("app idle; stopping its processes", "idle_timeout", idle)
				p.stopAllLocked(CauseIdle)
				p.broadcastLocked()
			} else {
				wait = left
			}
		}
		ch := p.changed
		p.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-p.closing:
			return
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// idleCandidateLocked reports whether processes run but nobody uses them:
// no caller waits and no lease is outstanding, on any process. A recycled
// process still finishing requests or WebSockets is use: idle shutdown
// must not cut its drain short. So is a lease on a process being stopped
// or exited, until its Release (which happens when its connection fails):
// the pool's idle time starts from that Release, as from any other.
func (p *Pool) idleCandidateLocked() bool {
	if p.waiters > 0 || p.leases > 0 {
		return false
	}
	live := false
	for _, s := range p.slots {
		for _, pr := range []*process{s.cur, s.next} {
			if pr == nil {
				continue
			}
			if pr.state == stateStarting {
				return false
			}
			live = true
		}
	}
	return live
}
