package frontend

import (
	"context"
	"log/slog"
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
