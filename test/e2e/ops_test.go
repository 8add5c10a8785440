package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ghctl runs a gatehouse control command and returns its exit code and
// combined output.
func ghctl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(gatehouseBin, withRoot(args)...).CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return 0, string(out)
}

// opsStatus is the part of `gatehouse status --json` the tests read.
type opsStatus struct {
	PID       int `json:"pid"`
	Listeners []struct {
		Site    string `json:"site"`
		Address string `json:"address"`
	} `json:"listeners"`
	Apps []struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Starts   int    `json:"starts"`
		Restarts int    `json:"restarts"`
		LastExit *struct {
			PID   int    `json:"pid"`
			Code  int    `json:"code"`
			Cause string `json:"cause"`
		} `json:"last_exit"`
		LastStartError string `json:"last_start_error"`
		Processes      []struct {
			PID      int     `json:"pid"`
			Port     int     `json:"port"`
			State    string  `json:"state"`
			Uptime   float64 `json:"uptime_seconds"`
			Requests int     `json:"requests"`
			InFlight int     `json:"in_flight"`
		} `json:"processes"`
	} `json:"apps"`
}

func statusJSON(t *testing.T, pidFile string) opsStatus {
	t.Helper()
	code, out := ghctl(t, "status", "--json", "--pid-file", pidFile)
	if code != 0 {
		t.Fatalf("gatehouse status --json: exit %d\n%s", code, out)
	}
	var st opsStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if len(st.Apps) != 1 {
		t.Fatalf("status has %d apps, want 1:\n%s", len(st.Apps), out)
	}
	return st
}

// TestStatusAndControl drives status, recycle, stop and start over the
// admin socket found beside the pid file, after real traffic, a crash and
// a recycle.
func TestStatusAndControl(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, "--metrics", "127.0.0.1:0", dir)
	sock := strings.TrimSuffix(pidFile, ".pid") + ".sock"
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("admin socket %s: %v %v, want a socket with mode 0660", sock, fi, err)
	}

	p1 := g.pid()
	g.crash()
	waitFor(t, 5*time.Second, "crashed app to be gone", func() bool { return !alive(p1) })
	p2 := g.pid()
	if code, out := ghctl(t, "recycle", "--pid-file", pidFile); code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("gatehouse recycle: exit %d\n%s", code, out)
	}
	// recycle returns once the replacement serves and the old one is gone.
	if alive(p2) {
		t.Errorf("recycled process %d still alive after gatehouse recycle returned", p2)
	}
	p3 := g.pid()
	for range 3 {
		g.mustGet("/")
	}

	st := statusJSON(t, pidFile)
	a := st.Apps[0]
	if a.Name != "default/" || a.State != "ready" || a.Starts != 3 || a.Restarts != 1 {
		t.Errorf("app status = %+v, want default/ ready, 3 starts, 1 restart", a)
	}
	if a.LastExit == nil || a.LastExit.PID != p2 || a.LastExit.Cause != "recycle" {
		t.Errorf("last exit = %+v, want pid %d cause recycle", a.LastExit, p2)
	}
	if len(a.Processes) != 1 {
		t.Fatalf("processes = %+v, want 1", a.Processes)
	}
	if p := a.Processes[0]; p.PID != p3 || p.Port == 0 || p.State != "ready" || p.Requests != 4 || p.InFlight != 0 || p.Uptime <= 0 {
		t.Errorf("process = %+v, want pid %d ready with 4 requests (pid + 3)", p, p3)
	}
	if st.PID != g.cmd.Process.Pid || len(st.Listeners) != 1 || "http://"+st.Listeners[0].Address != g.base {
		t.Errorf("status pid %d listeners %+v, want pid %d listening on %s", st.PID, st.Listeners, g.cmd.Process.Pid, g.base)
	}

	// The same story in the metrics, on the admin socket and on --metrics.
	metricsAddr, _ := g.logs.find("metrics endpoint")["addr"].(string)
	for _, body := range []string{scrapeUnix(t, sock), scrapeTCP(t, metricsAddr)} {
		for _, want := range []string{
			`gatehouse_process_starts_total{app="/",site="default"} 3`,
			`gatehouse_process_exits_total{app="/",cause="crash",site="default"} 1`,
			`gatehouse_process_exits_total{app="/",cause="recycle",site="default"} 1`,
			`gatehouse_process_restarts_total{app="/",site="default"} 1`,
			`gatehouse_process_recycles_total{app="/",site="default"} 1`,
			`gatehouse_process_startup_duration_seconds_count{app="/",site="default"} 3`,
			// /pid ×3, / ×3; the crash answered 502.3.
			`gatehouse_requests_total{app="/",site="default",status_class="2xx",substatus="0"} 6`,
			`gatehouse_requests_total{app="/",site="default",status_class="5xx",substatus="3"} 1`,
			`gatehouse_app_time_to_first_byte_seconds_count{app="/",site="default"} 6`,
			`gatehouse_requests_in_flight{app="/",site="default"} 0`,
			`gatehouse_processes{app="/",site="default",state="ready"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	}
	if code, _ := httpGet(t, "http://"+metricsAddr+"/v1/status"); code != http.StatusNotFound {
		t.Errorf("--metrics address serves the admin API: GET /v1/status = %d, want 404", code)
	}

	code, table := ghctl(t, "status", "--pid-file", pidFile)
	for _, want := range []string{"default/", "ready", strconv.Itoa(p3), "recycle", "IN FLIGHT", strings.TrimPrefix(g.base, "http://")} {
		if code != 0 || !strings.Contains(table, want) {
			t.Errorf("status table (exit %d) lacks %q:\n%s", code, want, table)
		}
	}

	if code, out := ghctl(t, "stop", "default/", "--admin", sock); code != 0 {
		t.Fatalf("gatehouse stop: exit %d\n%s", code, out)
	}
	if alive(p3) || len(processesIn(dir)) != 0 {
		t.Errorf("app still running after gatehouse stop returned")
	}
	if code, _, _ := g.get("/"); code != http.StatusServiceUnavailable {
		t.Errorf("request to a stopped app = %d, want 503", code)
	}
	if len(processesIn(dir)) != 0 {
		t.Errorf("a request started the stopped app")
	}
	if st := statusJSON(t, pidFile); st.Apps[0].State != "stopped" {
		t.Errorf("state after stop = %q, want stopped", st.Apps[0].State)
	}
	if code, out := ghctl(t, "start", "default", "--pid-file", pidFile); code != 0 {
		t.Fatalf("gatehouse start: exit %d\n%s", code, out)
	}
	if len(processesIn(dir)) == 0 {
		t.Errorf("no app process after gatehouse start returned")
	}
	g.mustGet("/")

	if code, out := ghctl(t, "stop", "nosuch/app", "--pid-file", pidFile); code != 1 || !strings.Contains(out, "no such app") || !strings.Contains(out, "default/") {
		t.Errorf("stop of an unknown app: exit %d, want 1 naming the apps:\n%s", code, out)
	}
}

func scrapeUnix(t *testing.T, sock string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://gatehouse/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", sock, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func scrapeTCP(t *testing.T, addr string) string {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("scrape %s = %d", addr, code)
	}
	return body
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestControlFailuresExitNonZero: a start that fails and a reload that is
// rejected exit non-zero with the reason.
func TestControlFailuresExitNonZero(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-exit-at-start 7"), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	cfg := "sites:\n  - name: shop\n    bindings:\n      - {scheme: http, address: 127.0.0.1, port: 0}\n    applications:\n      - {path: /, dir: " + dir + "}\n"
	writeFile(t, cfgFile, cfg)
	g := start(t, dir, "serve", "--config", cfgFile, "--pid-file", pidFile)

	code, out := ghctl(t, "start", "shop/", "--pid-file", pidFile)
	if code != 1 || !strings.Contains(out, "exit code 7") {
		t.Errorf("start of an app that exits at start: exit %d, want 1 with the exit code:\n%s", code, out)
	}
	st := statusJSON(t, pidFile)
	if a := st.Apps[0]; a.State != "failed" || !strings.Contains(a.LastStartError, "exit code 7") {
		t.Errorf("status after the failed start = %+v, want failed with the start error", a)
	}

	writeFile(t, cfgFile, cfg+"bogusKey: 1\n")
	code, out = ghctl(t, "reload", "--pid-file", pidFile)
	if code != 3 || !strings.Contains(out, "gatehouse.yaml:") {
		t.Errorf("rejected reload: exit %d, want 3 with file:line:\n%s", code, out)
	}
	// A second binding: the reload's one log line names the listener it opened.
	writeFile(t, cfgFile, strings.Replace(cfg, "port: 0}", "port: 0}\n      - {scheme: http, address: 127.0.0.2, port: 0}", 1))
	if code, out := ghctl(t, "reload", "--pid-file", pidFile); code != 0 {
		t.Errorf("valid reload: exit %d\n%s", code, out)
	}
	// The log lines may reach the pipe after the control command's answer.
	waitFor(t, 5*time.Second, "the reload log lines", func() bool {
		return g.logs.count("reload rejected") >= 1 && g.logs.count("config reloaded") >= 1
	})
	if n, m := g.logs.count("reload rejected"), g.logs.count("config reloaded"); n != 1 || m != 1 {
		t.Errorf("%d rejected and %d applied reload lines, want one each", n, m)
	}
	if rec := g.logs.find("config reloaded"); rec == nil || !strings.Contains(fmt.Sprint(rec["listeners_opened"]), "127.0.0.2") || rec["took"] == nil {
		t.Errorf("reload line %v lacks the opened listener or the time it took", rec)
	}
}

// TestSignalPathChecksPid: without an admin socket, reload signals the pid
// in the pid file only if it is a gatehouse; a stale pid file naming
// another program is refused and that program is left alone.
func TestSignalPathChecksPid(t *testing.T) {
	t.Parallel()
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	writeFile(t, pidFile, strconv.Itoa(other.Process.Pid)+"\n")
	code, out := ghctl(t, "reload", "--pid-file", pidFile)
	if code != 1 || !strings.Contains(out, "not a gatehouse") {
		t.Errorf("reload with a pid file naming sleep: exit %d, want 1 saying it is not a gatehouse:\n%s", code, out)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil || !alive(other.Process.Pid) {
		t.Errorf("the other program was signalled: %v", err)
	}

	// A real gatehouse without an admin socket is signalled.
	dir := writeApp(t, testappAttrs(""), "")
	pidFile2 := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile2, "--admin", "off", dir)
	p1 := g.pid()
	code, out = ghctl(t, "recycle", "--pid-file", pidFile2)
	if code != 0 || !strings.Contains(out, "SIGUSR1") {
		t.Fatalf("recycle through the signal path: exit %d\n%s", code, out)
	}
	waitFor(t, 20*time.Second, "the signalled recycle", func() bool { return !alive(p1) })
}

// TestVersion: gatehouse version and --version print the module version
// from the build info.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version"} {
		code, out := ghctl(t, arg)
		if code != 0 || !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, "go1.") {
			t.Errorf("gatehouse %s: exit %d %q", arg, code, out)
		}
	}
}

// TestSingleAppRequestLog: --access-log turns the request log on for serve
// DIR; the JSON lines carry the app pid, also for a request that failed in
// the app (the crash, 502.3).
func TestSingleAppRequestLog(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	logFile := filepath.Join(t.TempDir(), "requests.log")
	g := start(t, dir, "serve", "--access-log", logFile, "--access-log-format", "json", dir)
	pid := g.pid()
	g.crash()
	type line struct {
		Path      string `json:"uri_stem"`
		Status    int    `json:"status"`
		Substatus int    `json:"substatus"`
		PID       int    `json:"pid"`
	}
	var lines []line
	waitFor(t, 5*time.Second, "two request log lines", func() bool {
		b, _ := os.ReadFile(logFile)
		lines = nil
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e line
			if json.Unmarshal([]byte(l), &e) == nil {
				lines = append(lines, e)
			}
		}
		return len(lines) == 2
	})
	if lines[0].Path != "/pid" || lines[0].Status != 200 || lines[0].PID != pid {
		t.Errorf("first line %+v, want /pid 200 from pid %d", lines[0], pid)
	}
	if lines[1].Path != "/crash" || lines[1].Status != 502 || lines[1].Substatus != 3 || lines[1].PID != pid {
		t.Errorf("crash line %+v, want 502.3 with pid %d", lines[1], pid)
	}
	if code, out := ghctl(t, "serve", "--config", "x.yaml", "--access-log", logFile); code != 2 || !strings.Contains(out, "accessLog") {
		t.Errorf("--access-log with --config: exit %d %q, want a usage error", code, out)
	}
}
