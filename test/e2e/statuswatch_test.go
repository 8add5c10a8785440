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

// TestStatusProcessUsage: status shows each process's CPU, memory,
// requests and restarts, and --watch redraws it until stopped.
func TestStatusProcessUsage(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	g.mustGet("/pid")
	code, out := ghctl(t, "status", "--json", "--pid-file", pidFile)
	if code != 0 || !strings.Contains(out, `"memory_bytes"`) || strings.Contains(out, `"memory_bytes": 0`) || !strings.Contains(out, `"cpu_seconds"`) {
		t.Errorf("status --json (exit %d) lacks the process's memory or CPU:\n%s", code, out)
	}
	code, table := ghctl(t, "status", "--pid-file", pidFile)
	for _, want := range []string{"CPU", "MEM", "RESTARTS", "%", "M  "} {
		if code != 0 || !strings.Contains(table, want) {
			t.Errorf("status table (exit %d) lacks %q:\n%s", code, want, table)
		}
	}

	cmd := exec.Command(gatehouseBin, "status", "--watch", "--interval", "100ms", "--pid-file", pidFile)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	redraws := make(chan struct{}, 16)
	go func() { // ends when the command is killed below
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "\x1b[2J") {
				redraws <- struct{}{}
			}
		}
		close(redraws)
	}()
	for i := range 3 {
		select {
		case _, ok := <-redraws:
			if !ok {
				t.Fatalf("status --watch ended after %d redraws", i)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("status --watch drew %d tables, want 3", i)
		}
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
}
