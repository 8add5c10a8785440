package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReopenLogs: after logrotate moves the access log away, gatehouse
// reopen-logs (and SIGWINCH) make gatehouse write a new file of that name,
// directives first; the moved file keeps the earlier lines.
func TestReopenLogs(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	logs := t.TempDir()
	accessLog := filepath.Join(logs, "access.log")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, "--access-log", accessLog, dir)
	lineFor := func(path, stem string) bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), " "+stem+" ")
	}
	rotate := func(n string, reopen func()) {
		t.Helper()
		if err := os.Rename(accessLog, accessLog+"."+n); err != nil {
			t.Fatal(err)
		}
		reopen()
		g.mustGet("/after-" + n)
		waitFor(t, 5*time.Second, "the request in the new access log", func() bool { return lineFor(accessLog, "/after-"+n) })
		if b, _ := os.ReadFile(accessLog); !strings.HasPrefix(string(b), "#Software: ") {
			t.Errorf("new access log does not start with the directives:\n%s", b)
		}
		if lineFor(accessLog+"."+n, "/after-"+n) {
			t.Errorf("the moved log got the request after the reopen")
		}
	}
	g.mustGet("/before")
	waitFor(t, 5*time.Second, "the first request in the access log", func() bool { return lineFor(accessLog, "/before") })
	rotate("1", func() {
		if code, out := ghctl(t, "reopen-logs", "--pid-file", pidFile); code != 0 || !strings.Contains(out, "reopened") {
			t.Fatalf("reopen-logs: exit %d\n%s", code, out)
		}
	})
	if !lineFor(accessLog+".1", "/before") {
		t.Errorf("the moved log lost the earlier request")
	}
	rotate("2", func() {
		if err := g.cmd.Process.Signal(syscall.SIGWINCH); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the reopen on SIGWINCH", func() bool { return g.logs.count("access logs reopened") >= 2 })
	})
}

// TestReopenStdoutLogs: reopen-logs starts a new stdout log file for a
// running app process, so its output goes on after logrotate moved the
// old file away.
func TestReopenStdoutLogs(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout"`, "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	pid := g.pid()
	logs := filepath.Join(dir, "logs")
	rotated := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(logs, "stdout_*.log"))
	for _, f := range files {
		if err := os.Rename(f, filepath.Join(rotated, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := ghctl(t, "reopen-logs", "--pid-file", pidFile); code != 0 {
		t.Fatalf("reopen-logs: exit %d\n%s", code, out)
	}
	g.mustGet("/sleep?d=4ms")
	waitFor(t, 5*time.Second, "the output in a new stdout log file", func() bool {
		files, _ := filepath.Glob(filepath.Join(logs, "stdout_*.log"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), "sleeping 4ms") {
				return true
			}
		}
		return false
	})
	if g.pid() != pid {
		t.Errorf("reopen-logs restarted the app")
	}
}
