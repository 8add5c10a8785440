package proxy

import (
	"context"
	"testing"
)

// countingCtx is a context with an AfterFunc of its own that counts its
// calls.
type countingCtx struct {
	context.Context
	n int
}

func (c *countingCtx) AfterFunc(f func()) func() bool {
	c.n++
	return context.AfterFunc(c.Context, f)
}

// TestAfterFuncUsesTheContexts: a context's own AfterFunc is used, and
// context.AfterFunc for any other context.
func TestAfterFuncUsesTheContexts(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	c := &countingCtx{Context: base}
	ran := make(chan struct{})
	afterFunc(c, func() { close(ran) })
	if c.n != 1 {
		t.Fatalf("the context's AfterFunc was called %d times; want 1", c.n)
	}
	cancel()
	<-ran
	ran2 := make(chan struct{})
	afterFunc(base, func() { close(ran2) }) // ended: runs at once
	<-ran2
}
