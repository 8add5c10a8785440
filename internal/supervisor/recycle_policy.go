package supervisor

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// defaultPolicyTick is how often the recycling conditions are checked.
const defaultPolicyTick = time.Second

// policyState is the recycling policy's bookkeeping in a Pool, under
// Pool.mu like the rest of the pool's state.
type policyState struct {
	tick   time.Duration    // check interval (withPolicyTick); set before the loop starts
	counts map[string]int64 // recycles by condition

	// kick wakes the loop at once when a process was given its last request
	// (leaseCap); buffered 1, sent to without blocking, never closed.
	kick chan struct{}
}

// RecycleCounts returns how many recycles each recycling condition caused
// (keys ConditionTime, ConditionSchedule, ConditionRequests, ConditionPrivateMemory), for
// status pages and metrics. Recycles asked for by Recycle are not counted.
func (p *Pool) RecycleCounts() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.pol.counts)
}

// memSample is the private memory of one process group over time.
type memSample struct {
	bytes     int64
	overSince time.Time
}

// policyLoop checks the recycling conditions of Spec.AppPool.Recycling every
// tick, and at once when a process was given its last request, and when one
// is met, logs the cause, counts it and recycles the pool (overlapped, as
// Recycle). It is the pool's own goroutine and ends on Close; with no
// conditions set it only waits for a spec change.
//
// The requests condition is exact: a process given Requests leases takes
// no more (see process.leaseCap), so the Nth request is its last and later
// ones wait for the replacement (or go to another slot's process). If the
// replacement fails to start, Recycle lifts the cap and the old process
// keeps serving.
func (p *Pool) policyLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.wg.Go(func() { // ends Recycle calls when the pool closes
		select {
		case <-p.closing:
			cancel()
		case <-ctx.Done():
		}
	})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	mem := map[int]memSample{}
	var last, lastSample time.Time
	tick := p.pol.tick
	for {
		p.mu.Lock()
		pol := p.spec.AppPool.Recycling
		ch := p.changed
		snaps := p.servingSnapsLocked()
		p.mu.Unlock()
		now := p.now()
		if !pol.active() {
			last = time.Time{}
			select {
			case <-p.closing:
				return
			case <-ch:
			}
			continue
		}
		if last.IsZero() {
			last = now
		}
		if pol.PrivateMemory > 0 && now.Sub(lastSample) >= pol.memoryInterval(tick) {
			lastSample = now
			mem = samplePrivateMemory(snaps, mem, pol.PrivateMemory, now)
		}
		for i := range snaps {
			if m, ok := mem[snaps[i].pid]; ok {
				snaps[i].memory, snaps[i].overSince = m.bytes, m.overSince
			}
		}
		cause, pid, why := pol.due(now, last, snaps)
		last = now
		wait := tick
		if cause != "" {
			p.mu.Lock()
			spec := p.spec
			p.mu.Unlock()
			p.emit(&spec, Event{Kind: RecycleConditionMet, PID: pid, Condition: cause, Detail: why})
			p.mu.Lock()
			if p.pol.counts == nil {
				p.pol.counts = map[string]int64{}
			}
			p.pol.counts[cause]++
			p.mu.Unlock()
			err := p.Recycle(ctx, nil)
			switch {
			case ctx.Err() != nil || errors.Is(err, upstream.ErrShuttingDown):
				return
			case err != nil:
				// The old processes keep serving; try again later rather
				// than spend the rapid-fail budget in a loop.
				p.log.Warn("recycle failed; the old processes keep serving", "cause", cause, "err", err)
				wait = 60 * tick
			}
			clear(mem)
			last = p.now()
		}
		timer.Reset(wait)
		select {
		case <-p.closing:
			return
		case <-timer.C:
		case <-p.pol.kick:
			timer.Stop()
		}
	}
}

// servingSnapsLocked lists the processes that serve requests.
func (p *Pool) servingSnapsLocked() []procSnap {
	var out []procSnap
	for _, s := range p.slots {
		if pr := s.cur; pr.runningLocked() {
			out = append(out, procSnap{pid: pr.pid, started: pr.started, requests: pr.requests, memory: -1})
		}
	}
	return out
}

// samplePrivateMemory reads the private memory of each process group in
// snaps and returns the samples, keeping when each went over limit.
func samplePrivateMemory(snaps []procSnap, prev map[int]memSample, limit int64, now time.Time) map[int]memSample {
	next := make(map[int]memSample, len(snaps))
	for _, s := range snaps {
		b, err := groupPrivateMemory(s.pid)
		if err != nil {
			continue // exited meanwhile
		}
		m := memSample{bytes: b}
		if b > limit {
			m.overSince = now
			if old := prev[s.pid]; !old.overSince.IsZero() {
				m.overSince = old.overSince
			}
		}
		next[s.pid] = m
	}
	return next
}
