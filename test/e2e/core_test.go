package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestFirstRequestStartsApp(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	g := start(t, dir, "serve", dir)
	// Nothing runs before the first request.
	if p := processesIn(dir); len(p) != 0 {
		t.Fatalf("app processes before the first request: %v", p)
	}
	body := g.mustGet("/")
	if !strings.Contains(body, "Hello from testapp") {
		t.Fatalf("body = %q", body)
	}
	if len(processesIn(dir)) != 1 {
		t.Fatalf("want one app process after the first request, got %v", processesIn(dir))
	}
	if g.logs.find("started") == nil {
		t.Errorf("no start logged:\n%s", g.logs.String())
	}
}

func TestRequestsWaitDuringStartup(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-startup-delay 1500ms"), "")
	g := start(t, dir, "serve", dir)
	const n = 12
	var wg sync.WaitGroup
	pids := make([]string, n)
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			resp, err := client.Get(g.base + "/pid")
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b := make([]byte, 64)
			k, _ := resp.Body.Read(b)
			codes[i], pids[i] = resp.StatusCode, strings.TrimSpace(string(b[:k]))
		})
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 200 || pids[i] != pids[0] {
			t.Fatalf("request %d: status %d pid %q; first pid %q", i, codes[i], pids[i], pids[0])
		}
	}
}

func TestTokenAndForwardedHeaders(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), `<environmentVariables><environmentVariable name="GREETING" value="hi %E2E_NAME%" /></environmentVariables>`)
	g := startEnv(t, dir, []string{"E2E_NAME=gatehouse"}, "serve", dir)

	// The client's own MS-ASPNETCORE-* headers never reach the app.
	code, body, hdr := g.get("/headers", "MS-ASPNETCORE-TOKEN", "forged", "mS-AspNetCore-Foo", "x", "X-Forwarded-For", "203.0.113.9:1234")
	if code != 200 {
		t.Fatalf("GET /headers = %d: %s", code, body)
	}
	for k := range hdr {
		if strings.HasPrefix(strings.ToUpper(k), "MS-ASPNETCORE") {
			t.Errorf("response carries %s to the client", k)
		}
	}
	var got struct {
		Headers    map[string][]string `json:"headers"`
		Raw        map[string][]string `json:"raw_headers"`
		RawXFF     []string            `json:"raw_x_forwarded_for"`
		RawXFP     []string            `json:"raw_x_forwarded_proto"`
		RemoteAddr string              `json:"remote_addr"`
		Scheme     string              `json:"scheme"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if v := got.Raw["Ms-Aspnetcore-Foo"]; v != nil {
		t.Errorf("forged MS-ASPNETCORE-Foo reached the app: %v", v)
	}
	if tok := strings.Join(got.Raw["Ms-Aspnetcore-Token"], ","); tok == "forged" || tok == "" {
		t.Errorf("app saw token %q, want the pairing token", tok)
	}
	if xff := strings.Join(got.RawXFF, ","); !regexp.MustCompile(`^203\.0\.113\.9:1234, 127\.0\.0\.1:\d+$`).MatchString(xff) {
		t.Errorf("X-Forwarded-For = %q, want the client's list plus 127.0.0.1:port", xff)
	}
	if strings.Join(got.RawXFP, ",") != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", got.RawXFP)
	}
	if !strings.HasPrefix(got.RemoteAddr, "127.0.0.1:") {
		t.Errorf("app's RemoteAddr = %q, want the client address from X-Forwarded-For", got.RemoteAddr)
	}

	// The environment ANCM gives the app.
	for name, want := range map[string]string{
		"ASPNETCORE_APPL_PATH":                "^/$",
		"ASPNETCORE_PORT":                     `^\d+$`,
		"HTTP_PLATFORM_PORT":                  `^\d+$`,
		"ASPNETCORE_TOKEN":                    `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`,
		"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES": "Microsoft.AspNetCore.Server.IISIntegration",
		"GREETING":                            "^hi gatehouse$",
	} {
		if v := g.mustGet("/env?name=" + name); !regexp.MustCompile(want).MatchString(v) {
			t.Errorf("%s = %q, want match %s", name, v, want)
		}
	}

	// Straight to the app without the token: 400.
	port := g.mustGet("/env?name=ASPNETCORE_PORT")
	resp, err := client.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("request without pairing token = %d, want 400", resp.StatusCode)
	}
}

func TestCrashRestartsApp(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	g := start(t, dir, "serve", dir)
	p1 := g.pid()
	code, body := g.crash()
	if code != http.StatusBadGateway || !strings.Contains(body, "502.3") {
		t.Errorf("request that crashed the app = %d, want the 502.3 page; body:\n%s", code, body)
	}
	waitFor(t, 5*time.Second, "crashed app to be gone", func() bool { return !alive(p1) })
	p2 := g.pid()
	if p2 == p1 {
		t.Fatalf("same pid %d after crash", p1)
	}
	rec := g.logs.find("exited")
	if rec == nil || rec["pid"] == nil {
		t.Errorf("no exit record with pid in the log")
	}
}

func TestRapidFailLimit(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` rapidFailsPerMinute="1"`, "")
	g := start(t, dir, "serve", dir)
	for i := range 2 {
		p := g.pid()
		g.crash()
		waitFor(t, 5*time.Second, "crash "+strconv.Itoa(i), func() bool { return !alive(p) })
	}
	code, body, hdr := g.get("/")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("past the rapid-fail limit = %d Retry-After %q, want 503 with Retry-After; body:\n%s", code, hdr.Get("Retry-After"), body)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want 1–60 seconds", hdr.Get("Retry-After"))
	}
	if len(processesIn(dir)) != 0 {
		t.Errorf("an app process runs during the cut-off")
	}
}

func TestStartupFailurePage(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-exit-at-start 7"), "")
	g := start(t, dir, "serve", dir)
	code, body, _ := g.get("/")
	if code != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502", code)
	}
	for _, want := range []string{"502.5", "ANCM Out-Of-Process Startup Failure", "7"} {
		if !strings.Contains(body, want) {
			t.Errorf("502.5 page lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(body, "configured to exit with status 7") {
		t.Errorf("502.5 page lacks the app's output:\n%s", body)
	}
}

func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-startup-delay 30s")+` startupTimeLimit="1"`, "")
	g := start(t, dir, "serve", dir)
	code, body, _ := g.get("/")
	if code != http.StatusBadGateway || !strings.Contains(body, "502.5") {
		t.Fatalf("status = %d, want the 502.5 page:\n%s", code, body)
	}
	waitFor(t, 5*time.Second, "the slow app to be killed", func() bool { return len(processesIn(dir)) == 0 })
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` requestTimeout="00:00:01"`, "")
	g := start(t, dir, "serve", dir)
	g.mustGet("/")
	code, body, _ := g.get("/sleep?d=5s")
	if code != http.StatusBadGateway || !strings.Contains(body, "502.3") {
		t.Fatalf("status = %d, want the 502.3 page:\n%s", code, body)
	}
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-spawn-child")+` shutdownTimeLimit="5"`, "")
	g := start(t, dir, "serve", dir)
	g.mustGet("/")
	procs := processesIn(dir)
	if len(procs) < 2 {
		t.Fatalf("want the app and its child running, got %v", procs)
	}
	g.stop(10 * time.Second)
	// Graceful: the app was asked to stop (the shutdown event or SIGTERM),
	// stopped its server and exited with status 0 on its own; it was not
	// killed.
	if g.logs.find("shutting down (") == nil {
		t.Errorf("the app was not asked to stop")
	}
	if g.logs.count("did not stop within shutdownTimeLimit") != 0 || g.logs.count("killing process") != 0 {
		t.Errorf("the app was killed, not stopped gracefully")
	}
	exited := g.logs.find("process exited")
	if exited == nil || exited["exit_code"] != float64(0) || exited["signal"] != nil {
		t.Errorf("the app did not exit with status 0 on its own: %v", exited)
	}
	for _, p := range procs {
		if alive(p) {
			t.Errorf("process %d outlived gatehouse", p)
		}
	}
}

func TestKillAfterShutdownTimeLimit(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-ignore-sigterm")+` shutdownTimeLimit="1"`, "")
	g := start(t, dir, "serve", dir)
	pid := g.pid()
	began := time.Now()
	g.stop(10 * time.Second)
	took := time.Since(began)
	if alive(pid) {
		t.Fatalf("app %d ignoring SIGTERM survived gatehouse", pid)
	}
	// The kill comes after the limit, not before: the app had its second.
	if took < time.Second {
		t.Errorf("gatehouse stopped in %s, before shutdownTimeLimit=1s", took)
	}
}

func TestStdoutLogFile(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout"`, "")
	g := start(t, dir, "serve", dir)
	g.mustGet("/")
	var files []string
	waitFor(t, 5*time.Second, "the stdout log file", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "logs", "stdout_*.log"))
		return len(files) == 1
	})
	if !regexp.MustCompile(`stdout_\d{14}_\d+\.log$`).MatchString(files[0]) {
		t.Errorf("log file name %s, want stdout_<yyyyMMddHHmmss>_<pid>.log", files[0])
	}
	waitFor(t, 5*time.Second, "the app's output in the log file", func() bool {
		b, _ := os.ReadFile(files[0])
		return strings.Contains(string(b), "listening on")
	})
}

// Web.configs as "dotnet publish" writes them on Windows run unchanged: a
// self-contained app (".\myapp.exe", whose Linux file has no .exe) and a
// framework-dependent one ("dotnet" found on PATH, ".\MyApp.dll").
func TestWindowsPublishedWebConfig(t *testing.T) {
	t.Parallel()
	bin, err := os.ReadFile(testappBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("self-contained", func(t *testing.T) {
		t.Parallel()
		dir := writeApp(t, `processPath=".\myapp.exe" arguments="" stdoutLogEnabled="false" stdoutLogFile=".\logs\stdout" hostingModel="inprocess"`, "")
		writeFile(t, filepath.Join(dir, "myapp"), string(bin))
		if err := os.Chmod(filepath.Join(dir, "myapp"), 0o755); err != nil {
			t.Fatal(err)
		}
		g := start(t, dir, "serve", dir)
		if body := g.mustGet("/"); !strings.Contains(body, "Hello from testapp") {
			t.Fatalf("body = %q", body)
		}
		if g.logs.find("out of process") == nil {
			t.Errorf("hostingModel=inprocess not reported in the log")
		}
	})
	t.Run("framework-dependent", func(t *testing.T) {
		t.Parallel()
		// A stand-in for the dotnet host on PATH: it runs "the dll" it is
		// given, and fails as dotnet would if the path does not exist.
		hostDir := t.TempDir()
		writeFile(t, filepath.Join(hostDir, "dotnet"), "#!/bin/sh\n[ -f \"$1\" ] || { echo \"dotnet: no such file $1\" >&2; exit 1; }\nexec \"$TESTAPP_BIN\"\n")
		if err := os.Chmod(filepath.Join(hostDir, "dotnet"), 0o755); err != nil {
			t.Fatal(err)
		}
		dir := writeApp(t, `processPath="dotnet" arguments=".\bin\MyApp.dll" stdoutLogEnabled="false" stdoutLogFile=".\logs\stdout" hostingModel="inprocess"`, "")
		writeFile(t, filepath.Join(dir, "bin", "MyApp.dll"), "MZ")
		g := startEnv(t, dir, []string{"PATH=" + hostDir + ":" + os.Getenv("PATH"), "TESTAPP_BIN=" + testappBin}, "serve", dir)
		if body := g.mustGet("/"); !strings.Contains(body, "Hello from testapp") {
			t.Fatalf("body = %q", body)
		}
	})
}

func TestBrokenWebConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), `<?xml version="1.0"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="dotnet"
                startupTimeLimit="soon" />
  </system.webServer>
</configuration>
`)
	for _, args := range [][]string{{"check", dir}, {"serve", "--listen", "127.0.0.1:0", dir}} {
		out, err := exec.Command(gatehouseBin, args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 3 {
			t.Errorf("gatehouse %s: err %v, want exit code 3\n%s", args[0], err, out)
		}
		if !strings.Contains(string(out), "web.config:5") || !strings.Contains(string(out), "startupTimeLimit") {
			t.Errorf("gatehouse %s: error does not name web.config line 5 and the attribute:\n%s", args[0], out)
		}
	}
}

func TestCheckPrintsSettings(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` requestTimeout="00:05:00"`, "")
	out, err := exec.Command(gatehouseBin, "check", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{"requestTimeout", "00:05:00", "(web.config)", "startupTimeLimit", "(default)", "program: " + testappBin} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	g := start(t, dir, "serve", dir)
	ctx := ctxT(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.base, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	for _, msg := range []string{"hello", strings.Repeat("x", 100_000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo: %v, %d bytes, want %d", err, len(got), len(msg))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestProcessesPerApplication(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` processesPerApplication="2"`, "")
	g := start(t, dir, "serve", dir)
	seen := map[int]bool{}
	// Concurrent slow requests force both processes into use (least
	// outstanding requests picks the idle one).
	g.mustGet("/") // the first request starts both processes
	waitFor(t, 10*time.Second, "two processes ready", func() bool { return g.logs.count("process ready") == 2 })
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			resp, err := client.Get(g.base + "/sleep?d=300ms&pid=1")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			p, _ := strconv.Atoi(resp.Header.Get("X-Pid"))
			mu.Lock()
			seen[p] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 2 {
		t.Fatalf("requests went to pids %v, want 2 distinct", seen)
	}
}

func TestPythonHTTPServer(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	dir := writeApp(t, `processPath="python3" arguments="-m http.server %ASPNETCORE_PORT% --bind 127.0.0.1"`, "")
	writeFile(t, filepath.Join(dir, "hello.txt"), "hello from python\n")
	g := start(t, dir, "serve", dir)
	if body := g.mustGet("/hello.txt"); body != "hello from python\n" {
		t.Fatalf("body = %q", body)
	}
}

func TestRunCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := start(t, dir, "run", "--dir", dir, "--", testappBin, "-startup-delay", "100ms")
	if body := g.mustGet("/"); !strings.Contains(body, "Hello from testapp") {
		t.Fatalf("body = %q", body)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"bogus"}, 2},
		{[]string{"serve"}, 2},
		{[]string{"run"}, 2},
		{[]string{"help"}, 0},
		{[]string{"serve", "--help"}, 0},
		{[]string{"check", "/nonexistent/dir"}, 3},
	} {
		err := exec.Command(gatehouseBin, tc.args...).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code {
			t.Errorf("gatehouse %v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}

// Even when gatehouse itself is killed (SIGKILL, no chance to clean up),
// neither the app nor anything it started outlives it.
func TestGatehouseKilledLeavesNoOrphans(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-spawn-child"), "")
	g := start(t, dir, "serve", dir)
	pid := g.pid()
	child, err := strconv.Atoi(strings.TrimSpace(g.mustGet("/childpid")))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.done
	waitFor(t, 10*time.Second, "the app and its child to die with gatehouse", func() bool { return !alive(pid) && !alive(child) })
}
