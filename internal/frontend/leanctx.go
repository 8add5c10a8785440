package frontend

import (
	"context"
	"sync"
	"time"
)

// leanContext is a lean connection's context: it ends when the connection
// is force-closed or its client goes away during a request (Cancel). It
// has no deadline and no values, and is a context of its own rather than
// one of context.WithCancel: a new connection per request would otherwise
// pay for a cancelCtx, its cancel function and the method value of
// Cancel (three allocations more); its done channel is made by the first
// Done.
//
// Besides AfterFunc, which context.AfterFunc and the contexts derived from
// c use (the context package registers through a parent's AfterFunc when
// it has one), it holds one function in a slot of its own
// (AfterFuncSlot), which the app-side client registers for every request
// (to close the app connection when the client goes away). Held there,
// that costs a lock and no allocation, where context.AfterFunc allocates
// per request.
type leanContext struct {
	slotStop func() bool // c.stopSlot, made once

	mu    sync.Mutex
	done  chan struct{} // made by the first Done; closed by Cancel
	ended bool          // Cancel ran: a function registered now runs at once
	slot  func()        // AfterFuncSlot's function; nil: none
	// funcs are AfterFunc's functions; made by the first (kept apart:
	// most connections never register one).
	funcs *leanFuncs
}

// leanFuncs are the functions registered by leanContext.AfterFunc, each
// with the id its stop removes it by; ids count up from 1.
type leanFuncs struct {
	list   []leanAfterFunc
	lastID uint64
}

// leanAfterFunc is a function registered by leanContext.AfterFunc.
type leanAfterFunc struct {
	id uint64
	f  func()
}

// closedDone is the done channel of a context that ended before its Done
// was first asked for.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newLeanContext() *leanContext {
	c := &leanContext{}
	c.init()
	return c
}

// init makes c a new context in place, as newLeanContext does (a context
// held inside a larger value costs no allocation of its own).
func (c *leanContext) init() { c.slotStop = c.stopSlot }

// Deadline reports none: the connection's timeouts are its own.
func (c *leanContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when c ends.
func (c *leanContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.ended {
			return closedDone
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err is context.Canceled once c ended, else nil.
func (c *leanContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return context.Canceled
	}
	return nil
}

// Value is nil: c carries no values.
func (c *leanContext) Value(any) any { return nil }

// AfterFunc arranges for f to run on a goroutine of its own when c ends
// (at once if it has), as context.AfterFunc(c, f) does; stop unregisters
// f and reports whether that kept it from running. Each stop affects its
// own f only, and may be called any number of times. Each registration
// allocates its stop (and the first, the list of them).
func (c *leanContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		go f()
		return stopNone
	}
	if c.funcs == nil {
		c.funcs = &leanFuncs{}
	}
	fs := c.funcs
	fs.lastID++
	id := fs.lastID
	fs.list = append(fs.list, leanAfterFunc{id: id, f: f})
	c.mu.Unlock()
	return func() bool { return c.stopID(id) }
}

// stopNone is the stop of a function that ran or is running already.
func stopNone() bool { return false }

// stopID unregisters AfterFunc's function with the given id; false when it
// is not registered (it ran, or was stopped already).
func (c *leanContext) stopID(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.funcs // not nil: id was registered
	for i, a := range fs.list {
		if a.id == id {
			last := len(fs.list) - 1
			fs.list[i] = fs.list[last]
			fs.list[last] = leanAfterFunc{}
			fs.list = fs.list[:last]
			return true
		}
	}
	return false
}

// AfterFuncSlot is AfterFunc for the one caller that registers a function
// for each request of the connection and nothing else: the app-side client
// (to close its app connection when the client goes away). It holds f in
// c's single slot, without an allocation. Its caller holds one
// registration at a time: it calls stop at most once, before registering
// the next, since stop is the same function for every registration (called
// later, it would unregister the function registered next). A function
// registered while the slot is held anyway (a caller breaking that rule)
// goes through AfterFunc.
func (c *leanContext) AfterFuncSlot(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		go f()
		return stopNone
	}
	if c.slot != nil {
		c.mu.Unlock()
		return c.AfterFunc(f)
	}
	c.slot = f
	c.mu.Unlock()
	return c.slotStop
}

// stopSlot unregisters the slot's function; false when there was none (it
// ran already, or was never registered).
func (c *leanContext) stopSlot() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slot == nil {
		return false
	}
	c.slot = nil
	return true
}

// Cancel ends c and starts its registered functions, each on a goroutine
// of its own. Safe from any goroutine and more than once.
func (c *leanContext) Cancel() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	if c.done != nil {
		close(c.done)
	}
	slot := c.slot
	c.slot = nil
	var fs []leanAfterFunc
	if c.funcs != nil {
		fs = c.funcs.list
		c.funcs.list = nil
	}
	c.mu.Unlock()
	if slot != nil {
		go slot()
	}
	for _, a := range fs {
		go a.f()
	}
}
