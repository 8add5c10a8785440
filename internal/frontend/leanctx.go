package frontend

import (
	"context"
	"sync"
)

// leanContext is a lean connection's context: it ends when the connection
// is force-closed or its client goes away during a request. Besides what
// context.AfterFunc does with any context, it holds one function to run
// when it ends (AfterFunc), which the app-side client registers for every
// request (to close the app connection when the client goes away). Held
// here, that costs a lock and no allocation, where context.AfterFunc
// allocates and enters the context's child map per request.
type leanContext struct {
	context.Context
	cancel context.CancelFunc
	stopFn func() bool // c.stop, made once

	mu    sync.Mutex
	f     func() // the registered function; nil: none
	ended bool   // cancel ran: a function registered now runs at once
}

func newLeanContext() *leanContext {
	c := &leanContext{}
	c.Context, c.cancel = context.WithCancel(context.Background())
	c.stopFn = c.stop
	return c
}

// AfterFunc arranges for f to run on a goroutine of its own when c ends
// (at once if it has), as context.AfterFunc(c, f) does; stop unregisters
// f and reports whether that kept it from running. One function is held
// at a time (a connection serves one request at a time); another one
// registered meanwhile goes to context.AfterFunc.
//
// Unlike context.AfterFunc's, the stop of a held function is the same
// function for every registration: call it at most once, before the
// function registered next, or it unregisters that one instead.
func (c *leanContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	switch {
	case c.f != nil:
		c.mu.Unlock()
		return context.AfterFunc(c.Context, f)
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

// Cancel ends c and starts the held function, if any.
func (c *leanContext) Cancel() {
	c.cancel()
	c.mu.Lock()
	f := c.f
	c.f, c.ended = nil, true
	c.mu.Unlock()
	if f != nil {
		go f()
	}
}
