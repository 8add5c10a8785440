package supervisor

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seqLogNameRE is logNameRE with the sequence a same-second start gets.
var seqLogNameRE = regexp.MustCompile(`^stdout_\d{14}_` + strconv.Itoa(os.Getpid()) + `(_\d{3})?\.log$`)

// Each process of an app writes a file of its own, even when they all start
// in the same second (ANCM: one file per process start).
func TestStdoutLogFilePerProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := helperSpec(t, "echo")
	spec.Processes = 3
	spec.StdoutLog = filepath.Join(dir, "stdout")
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if !waitFor(10*time.Second, func() bool { return len(f.log.Find("process ready")) == 3 }) {
		t.Fatalf("three processes never got ready: %+v", f.pool.Processes())
	}
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 3 {
		t.Fatalf("want 3 log files, got %v (%v)", ents, err)
	}
	for _, e := range ents {
		if !seqLogNameRE.MatchString(e.Name()) {
			t.Errorf("log file name %q", e.Name())
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if n := strings.Count(string(b), "listening on 127.0.0.1:"); n != 1 {
			t.Errorf("%s has the start of %d processes, want 1:\n%s", e.Name(), n, b)
		}
	}
}
