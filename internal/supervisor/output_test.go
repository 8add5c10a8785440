package supervisor

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// TestStartErrorOutputLines: the output on a start error (the 502.5 page)
// has stdout and stderr interleaved by whole lines, in the order they were
// finished, never one stream's text inside the other's line.
func TestStartErrorOutputLines(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "interleave"))
	err := f.pool.Start(ctxT(t, 10*time.Second))
	se, ok := errors.AsType[*upstream.StartError](err)
	if !ok {
		t.Fatalf("Start: %v, want a StartError", err)
	}
	if want := "ERR line\npartial rest\n"; se.Output != want {
		t.Errorf("output = %q, want %q", se.Output, want)
	}
}
