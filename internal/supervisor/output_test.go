package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// TestNoShutdownEvent: without Spec.ShutdownEvent a stopping process gets
// SIGTERM alone, no POST /iisintegration.
func TestNoShutdownEvent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := helperSpec(t, "echo")
	spec.ShutdownEvent = false
	spec.StdoutLog = filepath.Join(dir, "stdout")
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !processGone(l.PID) || len(f.log.Find("kill")) != 0 {
		t.Errorf("pid %d: not stopped by SIGTERM alone", l.PID)
	}
	if n := len(f.log.Find("shutdown event")); n != 0 {
		t.Errorf("%d shutdown event log lines, want none", n)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); strings.Contains(string(b), "got shutdown event") {
			t.Errorf("the app got the shutdown event: %q", b)
		}
	}
}
