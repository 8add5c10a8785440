package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/logtest"
)

// testKeeper starts a keeper (the shell script) whose stderr goes to a file
// that keeperOutput reads, and closes it at cleanup.
func testKeeper(t *testing.T) (*Keeper, *logtest.Recorder, string) {
	t.Helper()
	return testKeeperIn(t, keeperShell)
}

// testKeeperIn is testKeeper with the shell given; "" runs the Go keeper
// (this test binary, through TestMain).
func testKeeperIn(t *testing.T, shell string) (*Keeper, *logtest.Recorder, string) {
	t.Helper()
	errPath := filepath.Join(t.TempDir(), "keeper.stderr")
	f, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the keeper's Close: it starts on a goroutine, with f
	rec := logtest.New()
	k, err := newKeeper(rec.Logger(), f, shell)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			rec.Dump(t)
		}
	})
	return k, rec, errPath
}

func keeperOutput(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// awaitKeeperExit waits until the keeper process has exited (its pipe was
// closed) and returns how it ended.
func awaitKeeperExit(t *testing.T, k *Keeper) *os.ProcessState {
	t.Helper()
	select {
	case <-k.done:
		return k.cmd.ProcessState
	case <-time.After(5 * time.Second):
		t.Fatalf("keeper %d still running 5s after its pipe was closed", k.PID())
		return nil
	}
}

// group is a helper process in its own process group with a grandchild in
// the same group, both unknown to any Pool.
type group struct {
	pid, grandchild int
	exited          chan error // receives the helper's Wait result
}

// startGroup starts a helper that starts a grandchild (which ignores
// SIGTERM) in its process group, and returns once both run. Cleanup kills
// the group and reaps the helper.
func startGroup(t *testing.T) *group {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GH_") && !strings.HasPrefix(kv, "ASPNETCORE_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(exe)
	cmd.Env = append(env, "GH_HELPER=grandchild", "GH_PIDDIR="+dir, "ASPNETCORE_PORT=0", "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &group{pid: cmd.Process.Pid, exited: make(chan error, 1)}
	go func() { g.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-g.pid, syscall.SIGKILL)
		select {
		case <-g.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("helper %d not reaped", g.pid)
		}
		if g.grandchild != 0 && !waitFor(2*time.Second, func() bool { return processGone(g.grandchild) }) {
			t.Errorf("grandchild %d left behind", g.grandchild)
		}
	})
	ok := waitFor(5*time.Second, func() bool {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); string(b) == "sleep" {
				g.grandchild, _ = strconv.Atoi(e.Name())
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatal("helper's grandchild did not start")
	}
	if pg, err := syscall.Getpgid(g.grandchild); err != nil || pg != g.pid {
		t.Fatalf("grandchild %d in group %d (%v), want %d", g.grandchild, pg, err, g.pid)
	}
	return g
}

// awaitKilled waits until the helper was killed by SIGKILL and the
// grandchild is gone.
func (g *group) awaitKilled(t *testing.T) {
	t.Helper()
	select {
	case err := <-g.exited:
		g.exited <- err // for the cleanup
		var ps *os.ProcessState
		if ee, ok := err.(*exec.ExitError); ok {
			ps = ee.ProcessState
		}
		if _, sig := exitStatus(ps); sig != "SIGKILL" {
			t.Errorf("helper %d ended with %v, want SIGKILL", g.pid, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("helper %d still alive", g.pid)
	}
	if !waitFor(5*time.Second, func() bool { return processGone(g.grandchild) }) {
		t.Errorf("grandchild %d still alive", g.grandchild)
	}
}

// A gatehouse that dies (its end of the pipe closed, no Remove) takes the
// registered groups with it, grandchildren included.
func TestKeeperKillsGroupsWhenGatehouseDies(t *testing.T) {
	t.Parallel()
	for name, shell := range keeperKinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testKeeperKills(t, shell)
		})
	}
}

// keeperKinds are the two keepers: the shell script, and the Go keeper
// for machines without /bin/sh.
var keeperKinds = map[string]string{"sh": keeperShell, "go": ""}

func testKeeperKills(t *testing.T, shell string) {
	k, _, errPath := testKeeperIn(t, shell)
	self, _ := os.Executable()
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", k.PID())); (exe == self) != (shell == "") {
		t.Errorf("keeper runs %s; want the shell for %q, this binary for the Go keeper", exe, shell)
	}
	g := startGroup(t)
	other := startGroup(t)
	k.Add(g.pid)
	k.Add(other.pid)
	k.closePipe() // what the kernel does when gatehouse is SIGKILLed
	g.awaitKilled(t)
	other.awaitKilled(t)
	if ps := awaitKeeperExit(t, k); ps.ExitCode() != 0 {
		t.Errorf("keeper ended with %v, want exit 0", ps)
	}
	out := keeperOutput(t, errPath)
	if !strings.Contains(out, strconv.Itoa(g.pid)) || !strings.Contains(out, strconv.Itoa(other.pid)) {
		t.Errorf("keeper output %q does not name the killed groups %d and %d", out, g.pid, other.pid)
	}
}

// A removed group is not killed; the others are.
func TestKeeperRemove(t *testing.T) {
	t.Parallel()
	for name, shell := range keeperKinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testKeeperRemove(t, shell)
		})
	}
}

func testKeeperRemove(t *testing.T, shell string) {
	k, _, errPath := testKeeperIn(t, shell)
	kept := startGroup(t)
	killed := startGroup(t)
	k.Add(kept.pid)
	k.Add(killed.pid)
	k.Remove(kept.pid)
	k.closePipe()
	awaitKeeperExit(t, k) // it has acted on every command
	killed.awaitKilled(t)
	select {
	case err := <-kept.exited:
		kept.exited <- err
		t.Fatalf("removed group's helper %d ended: %v", kept.pid, err)
	default:
	}
	if processGone(kept.grandchild) {
		t.Errorf("removed group's grandchild %d is gone", kept.grandchild)
	}
	if out := keeperOutput(t, errPath); strings.Contains(out, strconv.Itoa(kept.pid)) {
		t.Errorf("keeper output %q names the removed group %d", out, kept.pid)
	}
}

// Close stops the keeper without killing anything removed, is idempotent,
// and Add and Remove after it do nothing.
func TestKeeperCloseIdempotent(t *testing.T) {
	t.Parallel()
	k, rec, errPath := testKeeper(t)
	g := startGroup(t)
	k.Add(g.pid)
	k.Remove(g.pid)
	for i := range 2 {
		if err := k.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if ps := k.cmd.ProcessState; ps == nil || ps.ExitCode() != 0 {
		t.Errorf("keeper ended with %v, want exit 0", ps)
	}
	if err := syscall.Kill(k.PID(), 0); err != syscall.ESRCH {
		t.Errorf("keeper %d still exists after Close (kill 0: %v)", k.PID(), err)
	}
	k.Add(g.pid)
	k.Remove(g.pid)
	select {
	case err := <-g.exited:
		g.exited <- err
		t.Errorf("helper %d ended: %v", g.pid, err)
	default:
	}
	if out := keeperOutput(t, errPath); out != "" {
		t.Errorf("keeper wrote %q", out)
	}
	for _, r := range rec.Find("") {
		if r.Level >= slog.LevelWarn {
			t.Errorf("logged %+v", r)
		}
	}
	var nilKeeper *Keeper
	nilKeeper.Add(1)
	nilKeeper.Remove(1)
	if err := nilKeeper.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

// A keeper whose process cannot start (its shell is not executable) is
// reported, and the Keeper then does nothing: Add, Remove, PID and Close
// return at once, as for a nil one.
func TestKeeperStartFails(t *testing.T) {
	t.Parallel()
	shell := filepath.Join(t.TempDir(), "sh")
	if err := os.WriteFile(shell, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := logtest.New()
	k, err := newKeeper(rec.Logger(), os.Stderr, shell)
	if err != nil {
		t.Fatalf("newKeeper: %v (the start is reported in the log, not here)", err)
	}
	g := startGroup(t)
	k.Add(g.pid)
	k.Remove(g.pid)
	if pid := k.PID(); pid != 0 {
		t.Errorf("PID = %d, want 0", pid)
	}
	if err := k.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if len(rec.Find("running without a keeper: if gatehouse is killed, the apps' child processes may outlive it")) != 1 {
		rec.Dump(t)
		t.Error("the failed start was not logged once")
	}
}

// Ctrl-C, SIGTERM and SIGHUP do not stop the keeper: it still kills the
// registered groups when gatehouse goes away.
func TestKeeperIgnoresSignals(t *testing.T) {
	t.Parallel()
	k, rec, _ := testKeeper(t)
	if pg, err := syscall.Getpgid(k.PID()); err != nil || pg != k.PID() {
		t.Errorf("keeper %d in group %d (%v), want its own", k.PID(), pg, err)
	}
	want := uint64(1)<<(syscall.SIGINT-1) | 1<<(syscall.SIGTERM-1) | 1<<(syscall.SIGHUP-1)
	if !waitFor(5*time.Second, func() bool { return sigIgn(k.PID())&want == want }) {
		t.Fatalf("keeper %d does not ignore SIGINT, SIGTERM and SIGHUP: SigIgn %x", k.PID(), sigIgn(k.PID()))
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if err := syscall.Kill(k.PID(), sig); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(-k.PID(), sig); err != nil {
			t.Fatal(err)
		}
	}
	g := startGroup(t)
	k.Add(g.pid)
	k.closePipe()
	g.awaitKilled(t)
	if ps := awaitKeeperExit(t, k); ps.ExitCode() != 0 {
		t.Errorf("keeper ended with %v, want exit 0", ps)
	}
	if len(rec.Find("keeper exited while Gatehouse runs")) != 1 {
		t.Errorf("the keeper's early exit was not logged")
	}
}

// sigIgn reads the ignored-signal mask of pid.
func sigIgn(pid int) uint64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

// The Pool registers each process group with Spec.Keeper at the start and
// removes it once the group is dead: a gatehouse that dies takes the app
// and its grandchild along, and a stopped app is not in the keeper's list.
func TestPoolRegistersWithKeeper(t *testing.T) {
	t.Parallel()
	t.Run("gatehouse dies", func(t *testing.T) {
		t.Parallel()
		k, _, errPath := testKeeper(t)
		spec := helperSpec(t, "grandchild")
		spec.Keeper = k
		f := newFixture(t, spec)
		l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		r, err := get(t, l.Addr, l.Token, "")
		l.Release()
		if err != nil {
			t.Fatal(err)
		}
		k.closePipe()
		select {
		case <-l.Exited:
		case <-time.After(5 * time.Second):
			t.Fatalf("app %d not killed by the keeper", l.PID)
		}
		if !waitFor(5*time.Second, func() bool { return processGone(r.Grandchild) }) {
			t.Errorf("grandchild %d survived", r.Grandchild)
		}
		awaitKeeperExit(t, k)
		if out := keeperOutput(t, errPath); !strings.Contains(out, strconv.Itoa(l.PID)) {
			t.Errorf("keeper output %q does not name the app's group %d", out, l.PID)
		}
	})
	t.Run("app stopped", func(t *testing.T) {
		t.Parallel()
		k, _, errPath := testKeeper(t)
		spec := helperSpec(t, "echo")
		spec.Keeper = k
		f := newFixture(t, spec)
		l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := f.pool.Close(ctx); err != nil {
			t.Fatal(err)
		}
		k.closePipe()
		awaitKeeperExit(t, k)
		if out := keeperOutput(t, errPath); out != "" {
			t.Errorf("keeper still had groups registered after the pool stopped: %q", out)
		}
	})
}
