package frontend

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"testing"
)

// TestLeanSetConns: the set's list of connections stays whole as they
// leave in any order (the newest, the oldest, one between), counted, and a
// second remove of one changes nothing.
func TestLeanSetConns(t *testing.T) {
	l := &listener{key: "test", srv: &Server{log: slog.New(slog.DiscardHandler)}}
	s := &l.lean
	var lcs [5]*leanConn
	for i := range lcs {
		lcs[i] = &leanConn{l: l}
		if !s.add(lcs[i]) {
			t.Fatal("add refused")
		}
	}
	// check walks the list both ways: want is newest first.
	check := func(want ...int) {
		t.Helper()
		var got []*leanConn
		var last *leanConn
		for lc := s.conns; lc != nil; lc = lc.next {
			if lc.prev != last {
				t.Fatalf("connection %d after another than its prev", len(got))
			}
			got, last = append(got, lc), lc
		}
		if len(got) != len(want) || s.nconns != len(want) {
			t.Fatalf("%d connections listed, %d counted; want %d", len(got), s.nconns, len(want))
		}
		for i, w := range want {
			if got[i] != lcs[w] {
				t.Fatalf("connection %d of the list is not lcs[%d]", i, w)
			}
		}
	}
	check(4, 3, 2, 1, 0)
	s.remove(lcs[2])
	check(4, 3, 1, 0)
	s.remove(lcs[4])
	check(3, 1, 0)
	s.remove(lcs[0])
	check(3, 1)
	s.remove(lcs[0])
	check(3, 1)
	s.remove(lcs[3])
	s.remove(lcs[1])
	check()
	s.drain(context.Background()) // ends the set's goroutines
}

// TestLeanSetWaitQueue: the connections that wait for a request are
// queued by kind in the order they began to wait; one whose request began
// and that waits again goes to the tail, one that ends leaves, and each
// one oldest hands out (the next to shed) leaves the queue, so that the
// next call gives another.
func TestLeanSetWaitQueue(t *testing.T) {
	l := &listener{key: "test", srv: &Server{log: slog.New(slog.DiscardHandler)}}
	s := &l.lean
	var lcs [6]*leanConn
	for i := range lcs {
		c, peer := net.Pipe()
		t.Cleanup(func() { c.Close(); peer.Close() })
		lcs[i] = &leanConn{l: l, c: c}
		if !s.add(lcs[i]) {
			t.Fatal("add refused")
		}
	}
	// check walks st's queue both ways: want is oldest first.
	check := func(st leanState, want ...int) {
		t.Helper()
		q := &s.waitq[st-leanIdle]
		var got []int
		var last *waitLink[*leanConn]
		for l := q.head; l != nil; l = l.next {
			lc := l.v
			if l.prev != last || l.q != q || &lc.wait != l {
				t.Fatalf("queue %d: connection %d linked wrong", st, len(got))
			}
			last = l
			for i := range lcs {
				if lcs[i] == lc {
					got = append(got, i)
				}
			}
		}
		if q.tail != last || !slices.Equal(got, want) {
			t.Fatalf("queue %d: %v, want %v", st, got, want)
		}
	}
	park := func(i int, st leanState) {
		t.Helper()
		// No socket to park (pollRaw nil): it waits on its goroutine.
		if r := s.park(lcs[i], st, 0, false); r != parkNot {
			t.Fatalf("park: %d", r)
		}
	}
	for i := range 4 {
		park(i, leanIdle)
	}
	park(4, leanNew)
	park(5, leanNew)
	check(leanIdle, 0, 1, 2, 3)
	check(leanNew, 4, 5)
	s.setState(lcs[1], leanActive) // its next request came
	check(leanIdle, 0, 2, 3)
	park(1, leanIdle)
	park(1, leanIdle) // parked again with no request between: keeps its place
	check(leanIdle, 0, 2, 3, 1)
	s.setState(lcs[4], leanActive) // its first request came
	park(4, leanIdle)
	check(leanIdle, 0, 2, 3, 1, 4)
	check(leanNew, 5)
	s.remove(lcs[2])
	check(leanIdle, 0, 3, 1, 4)
	for _, want := range []int{0, 3, 1, 4} {
		if c, parked := s.oldest(leanIdle); c != lcs[want].c || parked {
			t.Fatalf("oldest idle: not connection %d", want)
		}
	}
	if c, _ := s.oldest(leanIdle); c != nil {
		t.Fatal("oldest idle of an empty queue: a connection")
	}
	if c, _ := s.oldest(leanNew); c != lcs[5].c {
		t.Fatal("oldest new: not connection 5")
	}
	check(leanIdle)
	check(leanNew)
	for _, lc := range lcs {
		s.remove(lc)
	}
	s.drain(context.Background()) // ends the set's goroutines
}
