package frontend

import (
	"context"
	"errors"
	"testing"
)

// TestLeanContextAfterFunc: the held function runs once when the context
// ends, not after stop; one registered after the end runs at once; a
// second one registered while one is held runs too.
func TestLeanContextAfterFunc(t *testing.T) {
	c := newLeanContext()
	ran := make(chan int, 4)
	stop := c.AfterFunc(func() { ran <- 1 })
	if !stop() {
		t.Fatal("stop of a held function: false")
	}
	if stop() {
		t.Fatal("second stop: true")
	}
	stop1 := c.AfterFunc(func() { ran <- 2 })
	stop2 := c.AfterFunc(func() { ran <- 3 })
	c.Cancel()
	if c.Err() == nil {
		t.Fatal("Err after Cancel: nil")
	}
	got := map[int]bool{<-ran: true, <-ran: true}
	if !got[2] || !got[3] {
		t.Fatalf("ran %v after Cancel; want 2 and 3", got)
	}
	if stop1() || stop2() {
		t.Fatal("stop after the function ran: true")
	}
	stop = c.AfterFunc(func() { ran <- 4 })
	if n := <-ran; n != 4 {
		t.Fatalf("ran %d; want 4", n)
	}
	if stop() {
		t.Fatal("stop of a function registered after the end: true")
	}
	select {
	case n := <-ran:
		t.Fatalf("function %d ran again", n)
	default:
	}
}

// TestLeanContextEnds: Done, Err and a derived context follow Cancel,
// whether Done was asked for before or after it, and a function
// registered beside the held one (through a derived context) runs too.
func TestLeanContextEnds(t *testing.T) {
	c := newLeanContext()
	if c.Err() != nil {
		t.Fatalf("Err before Cancel: %v", c.Err())
	}
	done := c.Done()
	ran := make(chan struct{})
	stop := c.AfterFunc(func() { close(ran) })
	child, cancelChild := context.WithCancel(c) // registers beside the held function
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
		stop := c.AfterFunc(f)
		stop()
		c.Cancel()
	})
	if n > 3 {
		t.Fatalf("%v allocations per connection context; want at most 3", n)
	}
}
