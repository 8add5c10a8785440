package supervisor

import (
	"fmt"
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

// Rotation cuts at line ends: every file but the newest ends with a
// newline, no line is split across files (up to maxLine over maxSize), and
// a line longer than maxSize+maxLine is the only one ever cut.
func TestLogFileRotationAtLineEnds(t *testing.T) {
	t.Parallel()
	prefix := filepath.Join(t.TempDir(), "out")
	lf, err := openLogFile(prefix, 100, 0, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	// Lines of varying length written in pieces that straddle line ends, as
	// a pipe delivers them.
	for i := range 60 {
		line := fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", (i*7)%45))
		want.WriteString(line)
	}
	data := want.String()
	for len(data) > 0 {
		n := min(len(data), 13)
		if _, err := lf.Write([]byte(data[:n])); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	long := strings.Repeat("L", 100+maxLine+50) + "\n"
	lf.Write([]byte(long))
	lf.Close()

	files := logFiles(prefix)
	if len(files) < 5 {
		t.Fatalf("only %d files: rotation did not happen", len(files))
	}
	var got strings.Builder
	cuts := 0
	for i, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(b)
		if i < len(files)-1 && !strings.HasSuffix(string(b), "\n") {
			cuts++
		}
		if len(b) > 100+maxLine {
			t.Errorf("%s: %d bytes, more than maxSize+maxLine", f.path, len(b))
		}
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if strings.HasPrefix(line, "line") && !strings.HasSuffix(line, "\n") && i < len(files)-1 {
				t.Errorf("%s: line %q cut at the rotation", f.path, line)
			}
		}
	}
	if got.String() != want.String()+long {
		t.Errorf("the files together do not hold the output in order")
	}
	if cuts != 1 {
		t.Errorf("%d files end mid-line, want exactly 1 (the over-long line)", cuts)
	}
}

// umask returns the process's file-creation mask (from /proc, which reads it
// without changing it for the other tests running in parallel).
func umask(t *testing.T) os.FileMode {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return os.FileMode(n)
		}
	}
	t.Fatal("no Umask in /proc/self/status")
	return 0
}
