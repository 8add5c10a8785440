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
// Besides what context.AfterFunc does with any context, it holds one
// function to run when it ends (AfterFunc), which the app-side client
// registers for every request (to close the app connection when the
// client goes away). Held here, that costs a lock and no allocation, where
// context.AfterFunc allocates per request. A context derived from it
// (context.WithCancel and the like) registers through AfterFunc too (the
// context package uses a parent's AfterFunc when it has one).
type leanContext struct {
	stopFn func() bool // c.stop, made once

	mu    sync.Mutex
	done  chan struct{} // made by the first Done; closed by Cancel
	f     func()        // the registered function; nil: none
	ended bool          // Cancel ran: a function registered now runs at once
	// more ends with c: a second function registered while one is held
	// goes to context.AfterFunc on it. Made for the first such one.
	more       context.Context
	cancelMore context.CancelFunc
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
func (c *leanContext) init() { c.stopFn = c.stop }

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
// f and reports whether that kept it from running. One function is held
// at a time (a connection serves one request at a time); another one
// registered meanwhile goes to context.AfterFunc on a context that ends
// with c.
//
// Unlike context.AfterFunc's, the stop of a held function is the same
// function for every registration: call it at most once, before the
// function registered next, or it unregisters that one instead.
func (c *leanContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	switch {
	case c.f != nil:
		if c.more == nil {
			c.more, c.cancelMore = context.WithCancel(context.Background())
		}
		more := c.more
		c.mu.Unlock()
		return context.AfterFunc(more, f)
	case c.ended:
		c.mu.Unlock()
		go f()
		return c.stopFn // reports false: f is not held
	}
	c.f = f
	c.mu.Unlock()
	return c.stopFn
}

// stop unregisters the held function; false when there was none (it ran
// already, or was never registered).
func (c *leanContext) stop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return false
	}
	c.f = nil
	return true
}

// Cancel ends c and starts the held function, if any. Safe from any
// goroutine and more than once.
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
	f, cancelMore := c.f, c.cancelMore
	c.f = nil
	c.mu.Unlock()
	if cancelMore != nil {
		cancelMore()
	}
	if f != nil {
		go f()
	}
}
