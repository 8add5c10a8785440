package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestApplicationPool runs an app through the real binary with application
// pool settings from the site config: a clean environment, recycling after
// a number of requests under load (no request may fail) and, when the test
// runs as root, a throwaway user as the app's identity.
func TestApplicationPool(t *testing.T) {
	t.Parallel()
	user := ""
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("useradd"); err == nil {
			user = throwawayUser(t)
		}
	}
	if user == "" {
		t.Log("not root (or no useradd): the app runs as Gatehouse's user; the identity is covered where root")
	}
	// A folder every user can enter: t.TempDir is private to the test's user.
	appDir, err := os.MkdirTemp("", "gatehouse-pool-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(appDir) })
	if err := os.Chmod(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(appDir, "testapp")
	copyExecutable(t, testappBin, bin)
	writeFile(t, filepath.Join(appDir, "web.config"), fmt.Sprintf(`<configuration><system.webServer>
  <aspNetCore processPath=%q>
    <environmentVariables><environmentVariable name="FROM_WEBCONFIG" value="yes" /></environmentVariables>
    <handlerSettings><handlerSetting name="drainTimeout" value="10s" /></handlerSettings>
  </aspNetCore>
</system.webServer></configuration>`, bin))

	identity := ""
	if user != "" {
		identity = "\n        user: " + user
	}
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`sites:
  - name: pool
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
    applications:
      - path: /
        dir: %s%s
        cleanEnvironment: true
        umask: "027"
        recycling:
          requests: 25
        limits: {memory: 512MB, processes: 256}
`, appDir, identity))
	// The umask and the cgroup v1 join go through gatehouse's own re-exec
	// shim, run as the app's user: the binary must be reachable for it, as
	// it is in /usr/local/bin.
	if err := os.Chmod(filepath.Dir(gatehouseBin), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	g := startEnv(t, appDir, []string{"GATEHOUSE_E2E_SECRET=leaked"}, "serve", "--config", cfgFile)
	g.base = "http://" + g.listenerAddr(t, "http")

	if code, body, _ := g.get("/env?name=GATEHOUSE_E2E_SECRET"); code != http.StatusNotFound {
		t.Errorf("clean environment: Gatehouse's variable reached the app: %d %q", code, body)
	}
	if got := g.mustGet("/env?name=FROM_WEBCONFIG"); got != "yes" {
		t.Errorf("web.config variable = %q, want yes", got)
	}
	pid := g.pid()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), "Umask:\t0027") {
		t.Errorf("app pid %d does not run with umask 027:\n%s", pid, st)
	}
	switch {
	case g.logs.find("cgroup v2 limits available") != nil, g.logs.find("limits use cgroup v1") != nil:
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if !strings.Contains(string(cg), "/app-pool-") {
			t.Errorf("app pid %d is not in its own cgroup:\n%s", pid, cg)
		}
	case g.logs.find("cgroup limits are not available") != nil:
		t.Log("no cgroups here: limits fell back to rlimits")
	default:
		t.Error("gatehouse said nothing about how limits are applied")
	}
	if user != "" {
		if got := g.mustGet("/env?name=USER"); got != user {
			t.Errorf("USER = %q, want %q", got, user)
		}
		if uid := statusUID(string(st)); uid == "0" || uid == "" {
			t.Errorf("app pid %d runs as uid %q, want %s's", pid, uid, user)
		}
	}

	// Load until the app was recycled twice for its request count.
	var mu sync.Mutex
	served := map[string]int{} // requests answered by each pid
	var order []string         // the pids in the order they first answered
	failed := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 30 * time.Second}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(g.base + "/pid")
				var body []byte
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if err != nil || resp.StatusCode != http.StatusOK {
					failed++
					t.Errorf("GET /pid during recycling: %v %v %s", err, resp, body)
				} else {
					pid := strings.TrimSpace(string(body))
					if served[pid] == 0 {
						order = append(order, pid)
					}
					served[pid]++
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, 60*time.Second, "two recycles for the request count", func() bool {
		return g.logs.count("recycle condition met") >= 2
	})
	close(stop)
	wg.Wait()
	if failed != 0 {
		t.Fatalf("%d requests failed while the app was recycled", failed)
	}
	rec := g.logs.find("recycle condition met")
	if rec["condition"] != "requests" || !strings.Contains(fmt.Sprint(rec["detail"]), "periodicRestart requests") {
		t.Errorf("recycle record %v, want condition requests with its detail", rec)
	}
	// The count is exact: the second process (started by the first
	// recycle, replaced by the second) answered exactly 25 requests, all
	// of them from the load.
	if len(order) < 2 || served[order[1]] != 25 {
		t.Errorf("requests answered per process, in start order: %v %v; want exactly 25 from the second", order, served)
	}
}

// statusUID returns the real uid from a /proc/PID/status text.
func statusUID(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// throwawayUser creates a system user for the test and deletes it after.
func throwawayUser(t *testing.T) string {
	t.Helper()
	name := "ghe2e" + strconv.Itoa(os.Getpid()%100000) + strconv.Itoa(int(time.Now().UnixNano()%1000))
	if out, err := retryLocked("useradd", "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := retryLocked("userdel", name); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	return name
}

// retryLocked runs useradd or userdel, again while another test binary holds
// the lock on /etc/passwd, for up to 10s.
func retryLocked(prog string, args ...string) ([]byte, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(prog, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "lock") || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(50 * time.Millisecond) // the lock holder is another process; nothing to wait on
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
