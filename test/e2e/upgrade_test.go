package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestUpgradeUnderLoad: `gatehouse upgrade` hands the listening sockets to a
// new gatehouse process while clients keep sending requests, on new
// connections and on kept-alive ones; the old one drains and exits. Not one
// request fails, and the new process serves from the same address.
func TestUpgradeUnderLoad(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	oldPID := g.cmd.Process.Pid
	var newPID atomic.Int64
	t.Cleanup(func() {
		// The new gatehouse is not the harness's child: stop it here, before
		// the harness checks that no app process is left.
		if pid := int(newPID.Load()); pid != 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			waitFor(t, 30*time.Second, "the new gatehouse to stop", func() bool { return !alive(pid) })
		}
	})
	g.mustGet("/pid") // the app runs

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 6 {
		tr := &http.Transport{DisableKeepAlives: i%2 == 0} // half on new connections, half kept alive
		c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		wg.Go(func() {
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := c.Get(g.base + "/pid")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%v (keep-alive %v)", err, i%2 == 1))
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitFor(t, 10*time.Second, "load to run", func() bool { return ok.Load() > 50 })

	code, out := ghctl(t, "upgrade", "--pid-file", pidFile)
	if code != 0 {
		stopLoad()
		wg.Wait()
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
	atUpgrade := ok.Load()
	waitFor(t, 60*time.Second, "the old gatehouse to drain and exit", func() bool { return !alive(oldPID) })
	atExit := ok.Load()
	waitFor(t, 10*time.Second, "requests served by the new gatehouse alone", func() bool { return ok.Load() > atExit+200 })
	stopLoad()
	wg.Wait()

	t.Logf("upgrade under load: %d requests ok (%d before the upgrade call returned, %d until the old process exited), %d failed",
		ok.Load(), atUpgrade, atExit, failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed across the upgrade; first: %v", n, firstErr.Load())
	}
	if rec := g.logs.find("the new gatehouse serves"); rec == nil {
		t.Errorf("no hand-over in the log")
	}
	// The admin socket went over too.
	if code, out := ghctl(t, "status", "--pid-file", pidFile, "--json"); code != 0 || !strings.Contains(out, fmt.Sprintf(`"pid": %d`, newPID.Load())) {
		t.Errorf("status after the upgrade: exit %d\n%s", code, out)
	}
}

// TestUpgradeFailureKeepsServing: when the new binary cannot start,
// `gatehouse upgrade` exits non-zero with the reason and the running
// gatehouse keeps serving.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	b, err := os.ReadFile(gatehouseBin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(b))
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := startBin(t, bin, dir, "serve", "--pid-file", pidFile, dir)
	g.mustGet("/pid")
	// "Install" a broken release over the binary (rename, as installers do).
	broken := bin + ".new"
	writeFile(t, broken, "#!/bin/sh\necho broken release >&2\nexit 1\n")
	if err := os.Chmod(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, bin); err != nil {
		t.Fatal(err)
	}
	code, out := ghctl(t, "upgrade", "--pid-file", pidFile)
	if code != 1 || !strings.Contains(out, "exited") || !strings.Contains(out, "keeps serving") {
		t.Errorf("upgrade to a broken binary: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(g.cmd.Process.Pid) {
		t.Errorf("pid file %q after a failed upgrade, want the running gatehouse", b)
	}
	g.mustGet("/pid")
	// Handing the sockets to the new process must not have left them
	// blocking: a blocking listener's accept cannot be ended, and gatehouse
	// could not stop.
	if blocking := blockingSockets(t, g.cmd.Process.Pid); len(blocking) > 0 {
		t.Errorf("sockets left blocking after the failed upgrade: %v", blocking)
	}
}

// blockingSockets lists the fds of pid's sockets without O_NONBLOCK (Go
// makes every socket of its own non-blocking).
func blockingSockets(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(info)) {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
				if flags&syscall.O_NONBLOCK == 0 {
					out = append(out, e.Name()+" "+link)
				}
			}
		}
	}
	return out
}
