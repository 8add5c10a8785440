package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogsCommand: gatehouse logs prints an app's output and gatehouse's
// lines about it, from memory or from its stdout log file, and -f follows
// new lines; restart (recycle's alias) shows up in them.
func TestLogsCommand(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	g.mustGet("/sleep?d=1ms")
	code, out := ghctl(t, "logs", "default/", "--pid-file", pidFile)
	for _, want := range []string{"default/ stdout| sleeping 1ms", "gatehouse INFO: process ready"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("logs (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	if code, out := ghctl(t, "logs", "nosuch/", "--pid-file", pidFile); code != 1 || !strings.Contains(out, "no such app") {
		t.Errorf("logs of an unknown app: exit %d\n%s", code, out)
	}

	cmd := exec.Command(gatehouseBin, "logs", "-f", "-n", "1", "default/", "--pid-file", pidFile)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 64)
	go func() { // ends when the command is killed
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-lines // the last line so far: following starts
	if code, out := ghctl(t, "restart", "default/", "--pid-file", pidFile); code != 0 || !strings.Contains(out, "recycle done") {
		t.Fatalf("restart: exit %d\n%s", code, out)
	}
	g.mustGet("/sleep?d=2ms")
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for !seen["recycling app"] || !seen["sleeping 2ms"] {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("logs -f ended")
			}
			for _, w := range []string{"recycling app", "sleeping 2ms"} {
				seen[w] = seen[w] || strings.Contains(l, w)
			}
		case <-deadline:
			t.Fatalf("logs -f showed %v of the recycle and the new request", seen)
		}
	}
}

// TestLogsFromStdoutLogFile: with stdoutLogEnabled, gatehouse logs reads
// the app's output from its newest log file.
func TestLogsFromStdoutLogFile(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout"`, "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	g.mustGet("/sleep?d=3ms")
	waitFor(t, 5*time.Second, "the line in the stdout log file", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "logs", "stdout_*.log"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), "sleeping 3ms") {
				return true
			}
		}
		return false
	})
	code, out := ghctl(t, "logs", "default/", "--pid-file", pidFile)
	if code != 0 || !strings.Contains(out, "==> "+filepath.Join(dir, "logs", "stdout_")) || !strings.Contains(out, "sleeping 3ms") {
		t.Errorf("logs (exit %d) lacks the log file's lines:\n%s", code, out)
	}
}
