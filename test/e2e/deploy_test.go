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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// load sends GETs from several workers until stopped. Its loops are bounded
// in count and time (loopback only), so it always ends by itself.
type load struct {
	stopc   chan struct{}
	wg      sync.WaitGroup
	total   atomic.Int64
	mu      sync.Mutex // protects failures, maxWait, pids
	fails   []string
	maxWait time.Duration
	pids    map[string]int
}

const (
	loadMaxPerWorker = 20000
	loadMaxTime      = 60 * time.Second
)

// startLoad runs workers that GET base+path; check decides whether a
// response is a failure (returns a reason) or fine ("").
func startLoad(base, path string, workers int, check func(code int, body string, h http.Header) string) *load {
	l := &load{stopc: make(chan struct{}), pids: map[string]int{}}
	deadline := time.Now().Add(loadMaxTime)
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range workers {
		l.wg.Go(func() {
			for i := 0; i < loadMaxPerWorker && time.Now().Before(deadline); i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				began := time.Now()
				resp, err := c.Get(base + path)
				var reason string
				if err != nil {
					reason = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					reason = check(resp.StatusCode, string(b), resp.Header)
					if resp.StatusCode == 200 {
						l.mu.Lock()
						l.pids[resp.Header.Get("X-Pid")]++
						l.mu.Unlock()
					}
				}
				took := time.Since(began)
				l.total.Add(1)
				l.mu.Lock()
				if reason != "" {
					l.fails = append(l.fails, reason)
				}
				l.maxWait = max(l.maxWait, took)
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}

func (l *load) report(t *testing.T, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s: %d requests, %d failed, longest %s, pids %v", what, l.total.Load(), len(l.fails), l.maxWait.Round(time.Millisecond), l.pids)
	if len(l.fails) > 0 {
		t.Errorf("%s: %d of %d requests failed; first: %s", what, len(l.fails), l.total.Load(), l.fails[0])
	}
}

func only200(code int, body string, _ http.Header) string {
	if code != 200 {
		return fmt.Sprintf("status %d: %.200s", code, body)
	}
	return ""
}

// waitRequests waits until the load has sent n more requests.
func (l *load) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.total.Load() + n
	waitFor(t, 20*time.Second, fmt.Sprintf("%d requests", n), func() bool { return l.total.Load() >= target })
}

func TestOverlappedRecycleLosesNothing(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-startup-delay 500ms -shutdown-delay 200ms"), "")
	pidFile := filepath.Join(t.TempDir(), "gatehouse.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, dir)
	first := g.pid()

	l := startLoad(g.base, "/sleep?d=20ms&pid=1", 8, only200)
	l.waitRequests(t, 50)
	// Three ways to recycle: gatehouse recycle (SIGUSR1), a web.config
	// change, and SIGHUP in single-app mode.
	pids := []int{first}
	recycle := []func(){
		func() {
			if out, err := exec.Command(gatehouseBin, "recycle", "--pid-file", pidFile).CombinedOutput(); err != nil {
				t.Fatalf("gatehouse recycle: %v\n%s", err, out)
			}
		},
		func() {
			b, _ := os.ReadFile(filepath.Join(dir, "web.config"))
			writeFile(t, filepath.Join(dir, "web.config"), strings.Replace(string(b), "<aspNetCore ", `<aspNetCore requestTimeout="00:01:00" `, 1))
		},
		func() { _ = g.cmd.Process.Signal(syscallHUP) },
	}
	for i, r := range recycle {
		r()
		prev := pids[len(pids)-1]
		var now int
		waitFor(t, 20*time.Second, fmt.Sprintf("recycle %d to a new process", i), func() bool {
			now = g.pid()
			return now != prev
		})
		waitFor(t, 20*time.Second, "the old process to be stopped", func() bool { return !alive(prev) })
		pids = append(pids, now)
		l.waitRequests(t, 20)
	}
	l.stop()
	l.report(t, "overlapped recycle x3")
}

func TestKillDashNineLosesNoGET(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-startup-delay 300ms"), "")
	g := start(t, dir, "serve", dir)
	pid := g.pid()

	// A POST in flight when the process dies is not retried: 502.3.
	postDone := make(chan string, 1)
	go func() {
		resp, err := client.Post(g.base+"/sleep?d=10s", "text/plain", strings.NewReader("payload"))
		if err != nil {
			postDone <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		postDone <- strconv.Itoa(resp.StatusCode) + " " + string(b)
	}()
	l := startLoad(g.base, "/sleep?d=30ms&pid=1", 8, only200)
	l.waitRequests(t, 50)
	// The test app logs each /sleep it begins; its output is in gatehouse's log.
	waitFor(t, 5*time.Second, "the POST to reach the app", func() bool { return strings.Contains(g.logs.String(), "sleeping 10s") })
	if err := syscallKill(pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a new process", func() bool { return g.pid() != pid })
	l.waitRequests(t, 50)
	l.stop()
	l.report(t, "kill -9 under GET load")
	select {
	case got := <-postDone:
		if !strings.HasPrefix(got, "502 ") || !strings.Contains(got, "502.3") {
			t.Errorf("POST in flight at kill -9: %.200s, want 502.3", got)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("POST in flight at kill -9 never answered")
	}
}

func TestAppOfflineUnderLoad(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("")+` shutdownTimeLimit="2"`, "")
	g := start(t, dir, "serve", dir)
	first := g.pid()
	const page = "<html><body>Down for maintenance</body></html>"

	var sawOffline atomic.Bool
	l := startLoad(g.base, "/pid", 6, func(code int, body string, h http.Header) string {
		switch {
		case code == 200:
			return ""
		case code == 503 && body == page && strings.HasPrefix(h.Get("Content-Type"), "text/html"):
			sawOffline.Store(true)
			return ""
		}
		return fmt.Sprintf("status %d: %.200s", code, body)
	})
	l.waitRequests(t, 30)
	// Renamed into place, as deploy tools do.
	tmp := filepath.Join(dir, "app_offline.htm.tmp")
	writeFile(t, tmp, page)
	if err := os.Rename(tmp, filepath.Join(dir, "App_Offline.htm")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the offline page", sawOffline.Load)
	waitFor(t, 10*time.Second, "the app to stop", func() bool { return !alive(first) })
	// While present, every answer is the page.
	for range 5 {
		code, body, _ := g.get("/pid")
		if code != 503 || body != page {
			t.Fatalf("while offline: %d %q", code, body)
		}
	}
	if err := os.Remove(filepath.Join(dir, "App_Offline.htm")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "200 after removal", func() bool { code, _, _ := g.get("/pid"); return code == 200 })
	l.waitRequests(t, 20)
	l.stop()
	l.report(t, "app_offline.htm under load")
	if g.pid() == first {
		t.Errorf("same process after app_offline.htm")
	}
}

func TestWebConfigChangeAndBrokenEdit(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), `<environmentVariables><environmentVariable name="GREETING" value="one" /></environmentVariables>`)
	g := start(t, dir, "serve", dir)
	if v := g.mustGet("/env?name=GREETING"); v != "one" {
		t.Fatalf("GREETING = %q", v)
	}
	wc := filepath.Join(dir, "web.config")
	b, _ := os.ReadFile(wc)
	writeFile(t, wc, strings.Replace(string(b), `value="one"`, `value="two"`, 1))
	waitFor(t, 20*time.Second, "the new setting", func() bool { return g.mustGet("/env?name=GREETING") == "two" })

	// A broken edit keeps the running app and settings, and the log names the line.
	writeFile(t, wc, strings.Replace(string(b), `<aspNetCore `, `<aspNetCore shutdownTimeLimit="forever" `, 1))
	waitFor(t, 10*time.Second, "the error in the log", func() bool {
		rec := g.logs.find("cannot be used")
		return rec != nil && strings.Contains(fmt.Sprint(rec["err"]), "web.config:")
	})
	if v := g.mustGet("/env?name=GREETING"); v != "two" {
		t.Errorf("after a broken edit GREETING = %q, want the old settings (two)", v)
	}
}

func TestDeployReplacesFolder(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	site := filepath.Join(parent, "publish")
	mk := func(dir, greeting string) {
		writeFile(t, filepath.Join(dir, "web.config"), fmt.Sprintf(`<configuration><system.webServer>
<aspNetCore %s><environmentVariables><environmentVariable name="GREETING" value=%q /></environmentVariables></aspNetCore>
</system.webServer></configuration>`, testappAttrs(""), greeting))
	}
	mk(site, "v1")
	g := start(t, site, "serve", site)
	if v := g.mustGet("/env?name=GREETING"); v != "v1" {
		t.Fatalf("GREETING = %q", v)
	}
	mk(filepath.Join(parent, "publish.new"), "v2")
	if err := os.Rename(site, filepath.Join(parent, "publish.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(parent, "publish.new"), site); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the new release", func() bool {
		code, body, _ := g.get("/env?name=GREETING")
		return code == 200 && body == "v2"
	})
	// Nothing of the old release may keep running.
	waitFor(t, 10*time.Second, "the old release to stop", func() bool { return len(processesIn(filepath.Join(parent, "publish.old"))) == 0 })
}

func TestIdleShutdown(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), `<handlerSettings><handlerSetting name="idleTimeout" value="1" /></handlerSettings>`)
	g := start(t, dir, "serve", dir)
	first := g.pid()
	waitFor(t, 10*time.Second, "the idle app to stop", func() bool { return !alive(first) })
	if second := g.pid(); second == first {
		t.Fatalf("same pid after idle stop")
	}
}

func TestReadinessProbe(t *testing.T) {
	t.Parallel()
	// The app answers 500 to everything but /healthz until it is ready: a
	// request let through before the probe passes would fail.
	dir := writeApp(t, testappAttrs("-ready-after 1s"), `<handlerSettings><handlerSetting name="readinessProbe" value="/healthz" /></handlerSettings>`)
	g := start(t, dir, "serve", dir)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			resp, err := client.Get(g.base + "/")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("request before readiness = %d, want it held until the probe passed", resp.StatusCode)
			}
		})
	}
	wg.Wait()
}

func TestNotifyReady(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-notify"), `<handlerSettings><handlerSetting name="notifyReady" value="true" /></handlerSettings>`)
	g := start(t, dir, "serve", dir)
	if v := g.mustGet("/env?name=NOTIFY_SOCKET"); v == "" {
		t.Errorf("NOTIFY_SOCKET not set")
	}
}

func TestSocketActivation(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-startup-delay 500ms"), `<handlerSettings><handlerSetting name="socketActivation" value="true" /></handlerSettings>`)
	g := start(t, dir, "serve", dir)
	pid := strings.TrimSpace(g.mustGet("/pid"))
	if got, want := strings.TrimSpace(g.mustGet("/activation")), "LISTEN_FDS=1 LISTEN_PID="+pid+" pid="+pid; got != want {
		t.Errorf("the app saw %q, want %q", got, want)
	}
}

func TestStdoutLogRetention(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs("-flood")+` stdoutLogEnabled="true" stdoutLogFile=".\logs\stdout"`,
		`<handlerSettings><handlerSetting name="stdoutLogMaxSize" value="64KB" /><handlerSetting name="stdoutLogMaxFiles" value="3" /></handlerSettings>`)
	g := start(t, dir, "serve", dir)
	g.mustGet("/")
	// The flood writes far more than 3 × 64 KB; wait until rotation happened
	// several times, then check the disk stays bounded.
	waitFor(t, 20*time.Second, "several rotations", func() bool {
		return g.logs.count("stdout log rotated") >= 5
	})
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "stdout_*"))
	if len(files) > 3 {
		t.Errorf("%d log files kept, want at most 3: %v", len(files), files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > 64<<10+64<<10 {
			t.Errorf("%s is %d bytes, want about 64 KB at most", f, fi.Size())
		}
	}
}

const syscallHUP = syscall.SIGHUP

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
