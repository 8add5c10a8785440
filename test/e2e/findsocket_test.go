package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ghctlEnv is ghctl with extra KEY=VALUE environment.
func ghctlEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(gatehouseBin, withRoot(args)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return 0, string(out)
}

// TestCommandsFindGatehouse: a gatehouse started with no --admin and no
// --pid-file is found by the commands with no flag either, under systemd
// ($RUNTIME_DIRECTORY) and as a user ($XDG_RUNTIME_DIR); after a kill -9
// its stale socket makes them say "gatehouse is not running", and a new
// gatehouse takes the place over.
func TestCommandsFindGatehouse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, envKey, sub string
	}{
		{"systemd", "RUNTIME_DIRECTORY", ""},
		{"user", "XDG_RUNTIME_DIR", "gatehouse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "user" && unix.Access("/run/gatehouse", unix.W_OK) == nil {
				t.Skip("/run/gatehouse is writable here: a gatehouse without flags puts its socket there, before $XDG_RUNTIME_DIR")
			}
			rt := t.TempDir()
			// TMPDIR of its own too: the last place the commands look is
			// $TMPDIR/gatehouse-UID, where a gatehouse of another run on this
			// machine may be.
			env := []string{"RUNTIME_DIRECTORY=", "XDG_RUNTIME_DIR=" + t.TempDir(), "TMPDIR=" + t.TempDir(), tc.envKey + "=" + rt}
			sock := filepath.Join(rt, tc.sub, "gatehouse.sock")
			if code, out := ghctlEnv(t, env, "status"); code != 1 || !strings.Contains(out, "gatehouse is not running") || !strings.Contains(out, sock) {
				t.Errorf("status with nothing running: exit %d, want 1 saying gatehouse is not running and where it looked (%s):\n%s", code, sock, out)
			}
			dir := writeApp(t, testappAttrs(""), "")
			g := startEnv(t, dir, env, "serve", dir)
			if code, out := ghctlEnv(t, env, "status"); code != 0 || !strings.Contains(out, "default/") {
				t.Fatalf("status without flags: exit %d\n%s", code, out)
			}
			if code, out := ghctlEnv(t, env, "recycle"); code != 0 {
				t.Errorf("recycle without flags: exit %d\n%s", code, out)
			}
			if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
				t.Errorf("admin socket %s: %v", sock, err)
			}

			g.cmd.Process.Signal(syscall.SIGKILL)
			<-g.done
			code, out := ghctlEnv(t, env, "status")
			if code != 1 || !strings.Contains(out, "gatehouse is not running") || !strings.Contains(out, "killed") || strings.Contains(out, "connection refused") {
				t.Errorf("status after kill -9: exit %d, want 1 saying gatehouse is not running (stale socket):\n%s", code, out)
			}
			code, out = ghctlEnv(t, env, "status", "--admin", sock)
			if code != 1 || !strings.Contains(out, "gatehouse is not running") || strings.Contains(out, "connection refused") {
				t.Errorf("status --admin STALE after kill -9: exit %d, want 1 saying gatehouse is not running:\n%s", code, out)
			}
			waitFor(t, 10*time.Second, "the killed gatehouse's app to go", func() bool { return len(processesIn(dir)) == 0 })

			startEnv(t, dir, env, "serve", dir)
			if code, out := ghctlEnv(t, env, "status"); code != 0 || !strings.Contains(out, "default/") {
				t.Errorf("status without flags after a new start: exit %d\n%s", code, out)
			}
		})
	}
}
