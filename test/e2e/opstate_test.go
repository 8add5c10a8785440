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

// TestStopSurvivesUpgradeAndRestart: an app stopped with `gatehouse stop`
// stays stopped (503) across a reload and an upgrade, and, after
// `gatehouse save`, across a restart of gatehouse; `save --forget` lets a
// restart start it again.
func TestStopSurvivesUpgradeAndRestart(t *testing.T) {
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
	if st := statusJSON(t, pidFile); st.Apps[0].State != "idle" {
		t.Errorf("state before the first request = %q, want idle", st.Apps[0].State)
	}
	g.mustGet("/pid")
	want503 := func(when string) {
		t.Helper()
		code, body, _ := g.get("/pid")
		if code != 503 || !strings.Contains(body, "stopped by its administrator") || strings.Contains(body, "shutting down") {
			t.Fatalf("%s: status %d, want 503 saying the app was stopped:\n%s", when, code, body)
		}
	}
	if code, out := ghctl(t, "stop", "default/", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse stop: exit %d\n%s", code, out)
	}
	want503("after stop")
	if code, table := ghctl(t, "status", "--pid-file", pidFile); code != 0 || !strings.Contains(table, "stopped by operator") {
		t.Errorf("status table (exit %d) does not say stopped by operator:\n%s", code, table)
	}
	if code, out := ghctl(t, "reload", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse reload: exit %d\n%s", code, out)
	}
	want503("after reload")

	oldPID := g.cmd.Process.Pid
	if code, out := ghctl(t, "upgrade", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse upgrade: exit %d\n%s", code, out)
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
	want503("after upgrade")
	if st := statusJSON(t, pidFile); st.PID != int(newPID.Load()) || st.Apps[0].State != "stopped" {
		t.Errorf("status after the upgrade: pid %d state %q, want pid %d stopped", st.PID, st.Apps[0].State, newPID.Load())
	}

	// Without save, a restart forgets the stop; with it, it does not.
	stateFile := strings.TrimSuffix(pidFile, ".pid") + ".state"
	if _, err := os.Stat(stateFile); err == nil {
		t.Errorf("state file %s written before gatehouse save", stateFile)
	}
	if code, out := ghctl(t, "save", "--pid-file", pidFile); code != 0 || !strings.Contains(out, "saved") {
		t.Fatalf("gatehouse save: exit %d\n%s", code, out)
	}
	restart := func() *gh {
		t.Helper()
		pid := int(newPID.Swap(0))
		syscall.Kill(pid, syscall.SIGTERM)
		waitFor(t, 30*time.Second, "gatehouse to stop", func() bool { return !alive(pid) })
		return start(t, dir, "serve", "--pid-file", pidFile, "--start-at-boot", dir)
	}
	g = restart()
	if code, _, _ := g.get("/pid"); code != 503 {
		t.Fatalf("after save and a restart: status %d, want 503", code)
	}
	if n := len(processesIn(dir)); n != 0 {
		t.Errorf("%d app processes after a restart with the app stopped (start-at-boot must not start it)", n)
	}
	// start is saved too: the file says nothing is stopped now.
	if code, out := ghctl(t, "start", "default/", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse start: exit %d\n%s", code, out)
	}
	g.mustGet("/pid")
	if b, err := os.ReadFile(stateFile); err != nil || strings.Contains(string(b), "default/") {
		t.Errorf("state file after start: %q %v, want no stopped app", b, err)
	}
	if code, out := ghctl(t, "stop", "default/", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse stop: exit %d\n%s", code, out)
	}
	if code, out := ghctl(t, "save", "--forget", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse save --forget: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("state file after save --forget: %v, want none", err)
	}
	g.stop(30 * time.Second)
	g = start(t, dir, "serve", "--pid-file", pidFile, dir)
	g.mustGet("/pid")
}

// TestStateFileFlag: serve --state-file puts the saved state where it is
// told (the units keep it in /var/lib, which outlives the service), and a
// new gatehouse reads it from there.
func TestStateFileFlag(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	state := filepath.Join(t.TempDir(), "lib", "gatehouse.state")
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	g := start(t, dir, "serve", "--pid-file", pidFile, "--state-file", state, dir)
	for _, args := range [][]string{{"stop", "default/"}, {"save"}} {
		if code, out := ghctl(t, append(args, "--pid-file", pidFile)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), "default/") {
		t.Fatalf("state file %s: %q %v", state, b, err)
	}
	g.stop(30 * time.Second)
	g = start(t, dir, "serve", "--pid-file", pidFile, "--state-file", state, dir)
	if code, _, _ := g.get("/pid"); code != 503 {
		t.Errorf("after a restart with --state-file: status %d, want 503", code)
	}
}
