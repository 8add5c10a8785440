package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/logtest"
)

// TestMain doubles as the test app: with GH_APP_HELPER=1 the test binary
// serves on ASPNETCORE_PORT instead of running the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GH_APP_HELPER") == "1" {
		runHelper()
		os.Exit(0)
	}
	// regexp2's match-timeout clock (URL Rewrite rules) ends on its own a
	// second after the last match.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"))
}

// runHelper is the app: it waits GH_DELAY_MS before it listens, answers
// "pid=<pid> greeting=<GREETING>" on every path, and exits on SIGTERM or
// the ANCM shutdown event. It records its pid in GH_PIDDIR.
func runHelper() {
	if dir := os.Getenv("GH_PIDDIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), nil, 0o644)
	}
	exit := make(chan struct{}, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	delay, _ := strconv.Atoi(os.Getenv("GH_DELAY_MS"))
	select {
	case <-time.After(time.Duration(delay) * time.Millisecond):
	case <-sig:
		return
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:"+os.Getenv("ASPNETCORE_PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d greeting=%s", os.Getpid(), os.Getenv("GREETING"))
	})
	mux.HandleFunc("POST /iisintegration", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		select {
		case exit <- struct{}{}:
		default:
		}
	})
	go http.Serve(ln, mux)
	select {
	case <-sig:
	case <-exit:
		time.Sleep(20 * time.Millisecond) // let the 202 leave
	}
}

// ---- fixtures ----

// site is one app folder served by an App behind a test front end.
type site struct {
	t      *testing.T
	dir    string // app folder
	pidDir string // where helper processes record their pids
	app    *App
	srv    *httptest.Server
	log    *logtest.Recorder
}

// appConfig is what writeConfig puts in web.config.
type appConfig struct {
	Greeting string
	DelayMS  int    // the app waits this long before it listens
	Attrs    string // extra <aspNetCore> attributes
	Settings string // <handlerSettings> content
	Broken   bool   // write an invalid attribute value
	// WebServer is more <system.webServer> content (URL Rewrite…).
	WebServer string
	// StartupTimeLimit is startupTimeLimit in seconds; 0 means 10.
	StartupTimeLimit int
}

func writeConfig(t *testing.T, dir string, c appConfig) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	attrs := c.Attrs
	if c.Broken {
		attrs += ` shutdownTimeLimit="forever"`
	} else {
		attrs += ` shutdownTimeLimit="2"`
	}
	limit := c.StartupTimeLimit
	if limit == 0 {
		limit = 10
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath=%q startupTimeLimit="%d" %s>
      <environmentVariables>
        <environmentVariable name="GREETING" value=%q />
        <environmentVariable name="GH_DELAY_MS" value="%d" />
      </environmentVariables>
      <handlerSettings>%s</handlerSettings>
    </aspNetCore>
    %s
  </system.webServer>
</configuration>
`, exe, limit, attrs, c.Greeting, c.DelayMS, c.Settings, c.WebServer)
	writeFile(t, filepath.Join(dir, "web.config"), body)
}

// writeFile writes path through a temporary file and a rename, as deploy
// tools do, so a watcher never sees it half written.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// openSite opens the App for dir behind an httptest front end. Cleanup
// closes both and checks that every app process is gone.
func openSite(t *testing.T, dir string, hook ...func(*App)) *site {
	t.Helper()
	s := &site{t: t, dir: dir, pidDir: t.TempDir(), log: logtest.New()}
	base := []string{"GH_APP_HELPER=1", "GH_PIDDIR=" + s.pidDir, "GORACE=atexit_sleep_ms=0"}
	if p, ok := os.LookupEnv("PATH"); ok {
		base = append(base, "PATH="+p)
	}
	a, err := Open(t.Context(), dir, Options{BaseEnv: base, Log: slog.New(s.log)})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hook {
		h(a)
	}
	s.app = a
	s.srv = httptest.NewServer(forwardHandler{a})
	t.Cleanup(func() {
		s.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, pid := range s.pids() {
			if !waitFor(5*time.Second, func() bool { return processGone(pid) }) {
				t.Errorf("app process %d still alive after Close", pid)
			}
		}
		if t.Failed() {
			s.log.Dump(t)
		}
	})
	return s
}

// pids lists every app process started so far.
func (s *site) pids() []int {
	ents, _ := os.ReadDir(s.pidDir)
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// get sends a GET through the front end; a transport error is code 0.
func (s *site) get(timeout time.Duration) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.getCtx(ctx)
}

// getCtx is get, for as long as ctx lasts.
func (s *site) getCtx(ctx context.Context) (int, string) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/", nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustGet returns the body of a 200 answer, failing the test otherwise.
func (s *site) mustGet() string {
	s.t.Helper()
	code, body := s.get(20 * time.Second)
	if code != http.StatusOK {
		s.t.Fatalf("GET = %d %q, want 200", code, body)
	}
	return body
}

// pidOf parses the pid from an app answer.
func pidOf(t *testing.T, body string) int {
	t.Helper()
	f, _, _ := strings.Cut(strings.TrimPrefix(body, "pid="), " ")
	n, err := strconv.Atoi(f)
	if err != nil {
		t.Fatalf("no pid in %q", body)
	}
	return n
}

// allGone reports whether no app process runs.
func (s *site) allGone() bool {
	if len(s.app.Pool().Processes()) != 0 {
		return false
	}
	for _, pid := range s.pids() {
		if !processGone(pid) {
			return false
		}
	}
	return true
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually waits until cond holds and reports whether it did. It has no
// bound of its own: it gives up only when the test binary is a minute from
// its -timeout (time for the cleanup), so a slow machine makes it wait
// longer, never fail. For what must happen whatever the speed.
func eventually(t *testing.T, cond func() bool) bool {
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Minute))
		defer cancel()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// processGone reports whether pid has exited: no such process, or a zombie
// that is not ours to reap.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+4 > len(s) {
		return true
	}
	f := strings.Fields(s[i+2:])
	ppid, _ := strconv.Atoi(f[1])
	return (f[0] == "Z" || f[0] == "X") && ppid != os.Getpid()
}
