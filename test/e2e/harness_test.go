// Package e2e drives the real gatehouse binary against real app processes
// over real sockets. TestMain builds gatehouse and the test app once.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	gatehouseBin string // built binary
	testappBin   string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// A gatehouse started without --admin or --pid-file binds its admin
	// socket in the first runtime folder it may use: keep these tests'
	// in a folder of their own, not a user's or another run's.
	runtimeDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runtimeDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	os.Unsetenv("RUNTIME_DIRECTORY")
	gatehouseBin = filepath.Join(dir, "gatehouse")
	testappBin = filepath.Join(dir, "testapp")
	for bin, pkg := range map[string]string{gatehouseBin: "../../cmd/gatehouse", testappBin: "../../internal/testapp"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}

// waitFor polls cond until it holds or the deadline passes. It is the only
// way these tests wait: never a bare sleep.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer collects a process's output for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines returns gatehouse's JSON log records.
func (s *syncBuffer) records() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// find returns the first log record with msg containing substr.
func (s *syncBuffer) find(substr string) map[string]any {
	for _, r := range s.records() {
		if m, _ := r["msg"].(string); strings.Contains(m, substr) {
			return r
		}
	}
	return nil
}

// count returns how many log records have msg containing substr.
func (s *syncBuffer) count(substr string) int {
	n := 0
	for _, r := range s.records() {
		if m, _ := r["msg"].(string); strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// gh is one running gatehouse.
type gh struct {
	t      *testing.T
	cmd    *exec.Cmd
	logs   *syncBuffer
	base   string // http://127.0.0.1:port
	done   chan struct{}
	err    error
	appDir string
}

// withRoot adds --allow-root after serve or run when the tests run as root
// (CI does): Gatehouse refuses to run an app as root otherwise.
func withRoot(args []string) []string {
	if os.Geteuid() != 0 || len(args) == 0 || (args[0] != "serve" && args[0] != "run") {
		return args
	}
	return append([]string{args[0], "--allow-root"}, args[1:]...)
}

// start runs "gatehouse <args…> --listen 127.0.0.1:0 --log-format json" and
// waits until it listens. It is stopped (SIGTERM) at the end of the test, and
// the test fails if any process of the app is left behind.
func start(t *testing.T, appDir string, args ...string) *gh {
	t.Helper()
	return startEnv(t, appDir, nil, args...)
}

// startEnv is start with extra KEY=VALUE environment for gatehouse (and so
// for the apps it starts).
func startEnv(t *testing.T, appDir string, env []string, args ...string) *gh {
	t.Helper()
	return startWith(t, gatehouseBin, appDir, env, args...)
}

// startBin is start with another gatehouse binary (a copy an upgrade test
// replaces).
func startBin(t *testing.T, bin, appDir string, args ...string) *gh {
	t.Helper()
	return startWith(t, bin, appDir, nil, args...)
}

func startWith(t *testing.T, bin, appDir string, env []string, args ...string) *gh {
	t.Helper()
	// The command, then the harness's flags, then the test's (which may end
	// in "-- CMD ARGS…").
	full := withRoot([]string{args[0], "--log-format", "json", "--log-level", "debug"})
	if !contains(args, "--listen") && !contains(args, "--config") {
		full = append(full, "--listen", "127.0.0.1:0")
	}
	full = append(full, args[1:]...)
	g := &gh{t: t, logs: &syncBuffer{}, done: make(chan struct{}), appDir: appDir}
	g.cmd = exec.Command(bin, full...)
	g.cmd.Env = append(os.Environ(), env...)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start gatehouse: %v", err)
	}
	go func() { g.err = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		g.stop(30 * time.Second)
		if appDir != "" {
			waitFor(t, 5*time.Second, "no app process left in "+appDir, func() bool { return len(processesIn(appDir)) == 0 })
		}
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", g.logs.String())
		}
	})
	waitFor(t, 10*time.Second, "gatehouse to listen", func() bool {
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited before listening: %v\n%s", g.err, g.logs.String())
		default:
		}
		rec := g.logs.find("listening")
		if rec == nil {
			return false
		}
		addr, _ := rec["addr"].(string)
		g.base = "http://" + addr
		return addr != ""
	})
	return g
}

// stop sends SIGTERM and waits for gatehouse to exit. If it does not, it
// gets SIGQUIT, so that the Go runtime writes every goroutine's stack to
// the log the test prints, and then SIGKILL.
func (g *gh) stop(within time.Duration) {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(within):
		g.t.Errorf("gatehouse did not stop within %s after SIGTERM; its goroutines are in the log (SIGQUIT)", within)
		_ = g.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-g.done:
		case <-time.After(5 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.done
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var client = &http.Client{Timeout: 30 * time.Second}

// get does a GET and returns status, body and headers.
func (g *gh) get(path string, hdr ...string) (int, string, http.Header) {
	g.t.Helper()
	req, err := http.NewRequest("GET", g.base+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// mustGet does a GET and fails unless it answers 200; it returns the body.
func (g *gh) mustGet(path string) string {
	g.t.Helper()
	code, body, _ := g.get(path)
	if code != 200 {
		g.t.Fatalf("GET %s = %d, want 200; body:\n%s", path, code, body)
	}
	return body
}

// pid asks the app for its pid.
func (g *gh) pid() int {
	g.t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(g.mustGet("/pid")))
	if err != nil {
		g.t.Fatalf("pid: %v", err)
	}
	return n
}

// writeApp makes an app folder with a web.config whose <aspNetCore> element
// has the given attributes and children, running testapp (copied in).
func writeApp(t *testing.T, attrs, children string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <handlers>
        <add name="aspNetCore" path="*" verb="*" modules="AspNetCoreModuleV2" resourceType="Unspecified" />
      </handlers>
      <aspNetCore %s>%s</aspNetCore>
    </system.webServer>
  </location>
</configuration>
`, attrs, children))
	return dir
}

// testappAttrs is processPath/arguments running the shared testapp binary.
func testappAttrs(args string) string {
	return fmt.Sprintf(`processPath=%q arguments=%q`, testappBin, args)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// processesIn lists the pids of processes whose working directory is dir
// (or inside it): the app processes and anything they started.
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			// A zombie counts too: it means nobody reaped it.
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid runs. A zombie does not: an orphaned grandchild
// that was killed waits for init (not gatehouse) to reap it.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return syscall.Kill(pid, 0) == nil
}

// ctxT returns a context that ends with the test.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// crash makes the app exit at once (POST /crash: a POST is never retried,
// so exactly one process dies).
func (g *gh) crash() (int, string) {
	g.t.Helper()
	resp, err := client.Post(g.base+"/crash", "text/plain", strings.NewReader("x"))
	if err != nil {
		g.t.Fatalf("POST /crash: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
