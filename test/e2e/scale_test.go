package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestScale: gatehouse scale sets an app's number of processes at run
// time; the number holds across a web.config change and an upgrade, and
// scaling down drains the extra processes.
func TestScale(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	var newPID atomic.Int64
	t.Cleanup(func() {
		if pid := int(newPID.Load()); pid != 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			waitFor(t, 30*time.Second, "the new gatehouse to stop", func() bool { return !alive(pid) })
		}
	})
	ready := func(st opsStatus) (n int) {
		for _, p := range st.Apps[0].Processes {
			if p.State == "ready" {
				n++
			}
		}
		return n
	}
	waitReady := func(want int, what string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool {
			st := statusJSON(t, pidFile)
			return ready(st) == want && len(st.Apps[0].Processes) == want
		})
	}
	g.mustGet("/pid")
	waitReady(1, "one process after the first request")
	if code, out := ghctl(t, "scale", "default/", "3", "--pid-file", pidFile); code != 0 {
		t.Fatalf("scale: exit %d\n%s", code, out)
	}
	if st := statusJSON(t, pidFile); ready(st) != 3 {
		t.Errorf("%d ready processes after scale returned, want 3", ready(st))
	}

	// A web.config change recycles the app with web.config's settings, but
	// the operator's process count.
	b, _ := os.ReadFile(filepath.Join(dir, "web.config"))
	writeFile(t, filepath.Join(dir, "web.config"), strings.Replace(string(b), "<aspNetCore ", `<aspNetCore requestTimeout="00:03:00" `, 1))
	waitFor(t, 30*time.Second, "the recycle after the web.config change", func() bool { return g.logs.count("recycling app") >= 1 })
	waitReady(3, "three processes after the web.config change")

	oldPID := g.cmd.Process.Pid
	if code, out := ghctl(t, "upgrade", "--pid-file", pidFile); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s", code, out)
	}
	waitFor(t, 5*time.Second, "the pid file to name the new gatehouse", func() bool {
		b, _ := os.ReadFile(pidFile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if n != 0 && n != oldPID {
			newPID.Store(int64(n))
			return true
		}
		return false
	})
	waitFor(t, 60*time.Second, "the old gatehouse to exit", func() bool { return !alive(oldPID) })
	if code, out := ghctl(t, "start", "default/", "--pid-file", pidFile); code != 0 { // every slot, at once
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	waitReady(3, "three processes in the upgraded gatehouse")

	if code, out := ghctl(t, "scale", "default/", "1", "--pid-file", pidFile); code != 0 {
		t.Fatalf("scale down: exit %d\n%s", code, out)
	}
	waitReady(1, "one process after scaling down")
	if code, out := ghctl(t, "scale", "default/", "zero", "--pid-file", pidFile); code != 2 {
		t.Errorf("scale to zero: exit %d, want 2\n%s", code, out)
	}
}
