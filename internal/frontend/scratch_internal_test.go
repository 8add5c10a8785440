package frontend

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// TestReleaseIdleScratch: a connection's request scratch (the parsed
// fields, grown or not, and the response header map) goes back as one
// piece, cleared, and the connection holds none of it after.
func TestReleaseIdleScratch(t *testing.T) {
	for _, n := range []int{3, 40} { // 40: the parser grew the fields
		lc := &leanConn{}
		lc.w.lc = lc
		lc.req.Header.Fields = lc.takeScratch().fields[:0]
		lc.w.reset(false, false)
		for range n {
			lc.req.Header.Fields = append(lc.req.Header.Fields, h1.Field{Name: "X-A", Value: "1"})
		}
		lc.w.Header().Set("X-B", "2")
		sc := lc.scratch
		lc.releaseIdle()
		if lc.scratch != nil || lc.w.header != nil || lc.req.Header.Fields != nil {
			t.Fatalf("%d fields: the connection still holds scratch after releaseIdle", n)
		}
		if len(sc.header) != 0 || len(sc.fields) != 0 || cap(sc.fields) < n {
			t.Fatalf("%d fields: scratch back with %d header keys, fields %d/%d", n, len(sc.header), len(sc.fields), cap(sc.fields))
		}
		for i, f := range sc.fields[:cap(sc.fields)] {
			if f != (h1.Field{}) {
				t.Fatalf("%d fields: field %d not cleared: %+v", n, i, f)
			}
		}
	}
}

// TestHeaderValues: the lean writer's value slots (HeaderValues) are
// handed out once per response, apart from each other also when their
// array has no room left; they are cleared when the writer moves on to its
// next response and when the scratch goes back to its pool, and reused
// then without an allocation.
func TestHeaderValues(t *testing.T) {
	lc := &leanConn{}
	lc.w.lc = lc
	lc.w.reset(false, false)
	fill := func(s []string, tag string) {
		for i := range s {
			s[i] = tag + string(rune('a'+i))
		}
	}
	check := func(s []string, tag string) {
		t.Helper()
		for i, v := range s {
			if want := tag + string(rune('a'+i)); v != want {
				t.Fatalf("slot %d of %s holds %q, want %q: handed out twice", i, tag, v, want)
			}
		}
	}
	a := lc.w.HeaderValues(3)
	fill(a, "A")
	b := lc.w.HeaderValues(20) // more than the array has room for
	fill(b, "B")
	c := lc.w.HeaderValues(5)
	fill(c, "C")
	if len(a) != 3 || len(b) != 20 || len(c) != 5 || cap(a) != 3 || cap(c) != 5 {
		t.Fatalf("slots of length %d, %d, %d and capacity %d, %d", len(a), len(b), len(c), cap(a), cap(c))
	}
	check(a, "A")
	check(b, "B")
	check(c, "C")
	lc.w.reset(false, false)
	for i, v := range c {
		if v != "" {
			t.Fatalf("slot %d kept %q past the response", i, v)
		}
	}
	d := lc.w.HeaderValues(2)
	if &d[0] != &b[0] {
		t.Fatal("the next response's slots are not the array's first")
	}
	fill(d, "D")
	lc.releaseIdle()
	if b[0] != "" || b[1] != "" {
		t.Fatalf("slots kept %q, %q after the scratch went back", b[0], b[1])
	}
	lc.w.reset(false, false)
	if n := testing.AllocsPerRun(100, func() {
		lc.w.reset(false, false)
		for i, s := 0, lc.w.HeaderValues(4); i < len(s); i++ {
			s[i] = "E"
		}
	}); n != 0 {
		t.Fatalf("%v allocations a response, want none", n)
	}
}
