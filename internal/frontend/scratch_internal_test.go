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
