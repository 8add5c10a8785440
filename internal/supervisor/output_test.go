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
	// The helper finishes its stdout line only once the stderr line was
	// read (it is logged after it is captured), however slow the readers.
	goFile := filepath.Join(t.TempDir(), "go")
	spec := helperSpec(t, "interleave", "GH_GO="+goFile)
	spec.StartupTimeout = time.Hour // it exits; only the test's pace matters
	f := newFixture(t, spec)
	res := make(chan error, 1)
	go func() { res <- f.pool.Start(t.Context()) }() // ends when the helper exits; awaited below
	for len(f.log.Find("ERR line")) == 0 {
		select {
		case err := <-res:
			t.Fatalf("Start ended before the stderr line was read: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := <-res
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
