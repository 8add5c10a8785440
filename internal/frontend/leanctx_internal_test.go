package frontend

import (
	"context"
	"errors"
	"testing"
)

// TestLeanContextAfterFunc: a function held in the slot runs once when the
// context ends, not after stop; one registered after the end runs at
// once; a second one registered while one is held runs too, and so does
// one registered through AfterFunc.
func TestLeanContextAfterFunc(t *testing.T) {
	c := newLeanContext()
	ran := make(chan int, 5)
	stop := c.AfterFuncSlot(func() { ran <- 1 })
	if !stop() {
		t.Fatal("stop of a held function: false")
	}
	if stop() {
		t.Fatal("second stop: true")
	}
	stop1 := c.AfterFuncSlot(func() { ran <- 2 })
	stop2 := c.AfterFuncSlot(func() { ran <- 3 })
	stop3 := c.AfterFunc(func() { ran <- 5 })
	c.Cancel()
	if c.Err() == nil {
		t.Fatal("Err after Cancel: nil")
	}
	got := map[int]bool{<-ran: true, <-ran: true, <-ran: true}
	if !got[2] || !got[3] || !got[5] {
		t.Fatalf("ran %v after Cancel; want 2, 3 and 5", got)
	}
	if stop1() || stop2() || stop3() {
		t.Fatal("stop after the function ran: true")
	}
	stop = c.AfterFuncSlot(func() { ran <- 4 })
	if n := <-ran; n != 4 {
		t.Fatalf("ran %d; want 4", n)
	}
	if stop() {
		t.Fatal("stop of a function registered after the end: true")
	}
	stop = c.AfterFunc(func() { ran <- 6 })
	if n := <-ran; n != 6 {
		t.Fatalf("ran %d; want 6", n)
	}
	if stop() {
		t.Fatal("stop of a function registered through AfterFunc after the end: true")
	}
	select {
	case n := <-ran:
		t.Fatalf("function %d ran again", n)
	default:
	}
}

// TestLeanContextEnds: Done, Err and a derived context follow Cancel,
// whether Done was asked for before or after it, and a function
// registered beside the slot's (through a derived context) runs too.
func TestLeanContextEnds(t *testing.T) {
	c := newLeanContext()
	if c.Err() != nil {
		t.Fatalf("Err before Cancel: %v", c.Err())
	}
	done := c.Done()
	ran := make(chan struct{})
	stop := c.AfterFuncSlot(func() { close(ran) })
	child, cancelChild := context.WithCancel(c) // registers beside the slot's function
	defer cancelChild()
	select {
	case <-done:
		t.Fatal("Done closed before Cancel")
	case <-child.Done():
		t.Fatal("derived context ended before Cancel")
	default:
	}
	c.Cancel()
	c.Cancel() // a second Cancel does nothing
	<-done
	<-ran
	<-child.Done()
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("Err after Cancel: %v, derived %v; want context.Canceled", c.Err(), child.Err())
	}
	if stop() {
		t.Fatal("stop after the function ran: true")
	}

	late := newLeanContext()
	late.Cancel()
	select {
	case <-late.Done(): // asked for after the end: closed
	default:
		t.Fatal("Done asked for after Cancel is not closed")
	}
}

// TestLeanContextAllocs: a connection's context, with a request's
// function held and stopped and the done channel made, costs three
// allocations (the context, its stop function, the channel), not the
// five of one built on context.WithCancel.
func TestLeanContextAllocs(t *testing.T) {
	f := func() {}
	n := testing.AllocsPerRun(100, func() {
		c := newLeanContext()
		_ = c.Done()
		stop := c.AfterFuncSlot(f)
		stop()
		c.Cancel()
	})
	if n > 3 {
		t.Fatalf("%v allocations per connection context; want at most 3", n)
	}
}

// TestLeanContextStopIsItsOwn: a stop returned by AfterFunc only ever
// unregisters its own function, as context.AfterFunc's: called again
// after the next request registered its function (in the slot), or after
// the next function registered through AfterFunc, it reports false and
// leaves that one in place; a context derived from the connection's and
// canceled during a later request leaves that request's function in place.
// All of them run when the connection ends.
func TestLeanContextStopIsItsOwn(t *testing.T) {
	c := newLeanContext()
	stop := c.AfterFunc(func() { t.Error("a stopped function ran") })
	if !stop() {
		t.Fatal("stop of a registered function: false")
	}
	ran := make(chan int, 3)
	stopSlot := c.AfterFuncSlot(func() { ran <- 1 })
	if stop() {
		t.Fatal("second stop: true")
	}
	stopNext := c.AfterFunc(func() { ran <- 2 })
	if stop() {
		t.Fatal("third stop: true")
	}
	child, cancelChild := context.WithCancel(c) // registers through AfterFunc
	if !stopSlot() {
		t.Fatal("stop of the slot's function: false")
	}
	stopSlot = c.AfterFuncSlot(func() { ran <- 3 }) // the next request's
	cancelChild()                                   // unregisters the derived context's function only
	c.Cancel()
	got := map[int]bool{<-ran: true, <-ran: true}
	if !got[2] || !got[3] {
		t.Fatalf("ran %v after Cancel; want 2 and 3", got)
	}
	<-child.Done()
	if stopSlot() || stopNext() {
		t.Fatal("stop after the function ran: true")
	}
}

// BenchmarkLeanContextDerived: a context derived from a connection's
// context and canceled, per request (as the proxy's HTTP/2 app client
// does for each request).
func BenchmarkLeanContextDerived(b *testing.B) {
	c := newLeanContext()
	_ = c.Done()
	b.ReportAllocs()
	for b.Loop() {
		_, cancel := context.WithCancelCause(c)
		cancel(nil)
	}
}
