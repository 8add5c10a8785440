package frontend

import (
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
