package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const page1, page2 = "<html>down for a deploy</html>", "<html>still down</html>"

// offlineServed reports whether the front end answers 503 with body.
func (s *site) offlineServed(body string) bool {
	code, got := s.get(10 * time.Second)
	return code == http.StatusServiceUnavailable && got == body
}

func TestAppOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1"})
	s := openSite(t, dir)
	first := pidOf(t, s.mustGet())

	// Renamed into place, in another letter case: the app stops (within
	// shutdownTimeLimit, 2 s) and the file is served.
	start := time.Now()
	writeFile(t, filepath.Join(dir, "App_Offline.HTM"), page1)
	if !eventually(t, func() bool { return s.offlineServed(page1) }) {
		t.Fatal("app_offline.htm not served")
	}
	if !eventually(t, s.allGone) {
		t.Fatalf("app still running with app_offline.htm: %+v", s.app.Pool().Processes())
	}
	t.Logf("app_offline.htm: app stopped %s after the file appeared", time.Since(start).Round(time.Millisecond))

	// Edited in place: the new content is served, nothing starts.
	if err := os.WriteFile(filepath.Join(dir, "App_Offline.HTM"), []byte(page2), 0o644); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, func() bool { return s.offlineServed(page2) }) {
		t.Fatal("edited app_offline.htm not served")
	}
	if n := len(s.pids()); n != 1 {
		t.Errorf("%d processes started while offline, want none", n-1)
	}

	// Removed: the next request starts a new process.
	if err := os.Remove(filepath.Join(dir, "App_Offline.HTM")); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, func() bool { code, _ := s.get(10 * time.Second); return code == http.StatusOK }) {
		t.Fatal("no 200 after app_offline.htm was removed")
	}
	if second := pidOf(t, s.mustGet()); second == first {
		t.Errorf("same process %d after app_offline.htm", first)
	}
}

func TestAppOfflineAtOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1", Settings: `<handlerSetting name="startAtBoot" value="true" />`})
	writeFile(t, filepath.Join(dir, "app_offline.htm"), page1)
	s := openSite(t, dir)
	if !s.offlineServed(page1) {
		t.Fatal("app_offline.htm present at open not served")
	}
	if n := len(s.pids()); n != 0 {
		t.Errorf("%d processes started despite app_offline.htm", n)
	}
}

func TestFolderReplaced(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "publish")
	writeConfig(t, dir, appConfig{Greeting: "v1"})
	s := openSite(t, dir)
	first := pidOf(t, s.mustGet())

	next := filepath.Join(parent, "publish.new")
	writeConfig(t, next, appConfig{Greeting: "v2"})
	if err := os.Rename(dir, filepath.Join(parent, "publish.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, func() bool { _, b := s.get(10 * time.Second); return strings.HasSuffix(b, "greeting=v2") }) {
		t.Fatal("the replaced folder's settings were not picked up")
	}
	if !eventually(t, func() bool { return processGone(first) }) {
		t.Errorf("the old release's process %d still runs", first)
	}

	// The new folder is watched: app_offline.htm in it takes effect.
	writeFile(t, filepath.Join(dir, "app_offline.htm"), page1)
	if !eventually(t, func() bool { return s.offlineServed(page1) }) {
		t.Fatal("app_offline.htm in the replaced folder not served")
	}
}

func TestBrokenWebConfigKeepsOldSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1"})
	s := openSite(t, dir)
	first := s.mustGet()

	writeConfig(t, dir, appConfig{Greeting: "v2", Broken: true})
	if !eventually(t, func() bool { return len(s.log.Find("cannot be used")) > 0 }) {
		t.Fatal("broken web.config not logged")
	}
	rec := s.log.Find("cannot be used")[0]
	if err := rec.Attrs["err"]; !strings.Contains(err, "web.config:") || !strings.Contains(err, "shutdownTimeLimit") {
		t.Errorf("log names %q, want the file, line and attribute", err)
	}
	if got := s.mustGet(); got != first {
		t.Errorf("after a broken edit the app answers %q, want the old process %q", got, first)
	}
	if s.app.Config().ShutdownTimeLimit != 2*time.Second {
		t.Errorf("settings changed to %v", s.app.Config().ShutdownTimeLimit)
	}

	// Fixed: the new settings are used.
	writeConfig(t, dir, appConfig{Greeting: "v3"})
	if !eventually(t, func() bool { _, b := s.get(10 * time.Second); return strings.HasSuffix(b, "greeting=v3") }) {
		t.Fatal("fixed web.config not picked up")
	}
}

func TestRestartMarker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "restart.txt")
	writeConfig(t, dir, appConfig{Greeting: "v1", Settings: `<handlerSetting name="restartMarker" value="` + marker + `" />`})
	s := openSite(t, dir)
	first := pidOf(t, s.mustGet())
	writeFile(t, marker, "now")
	if !eventually(t, func() bool {
		_, b := s.get(10 * time.Second)
		return !strings.HasPrefix(b, "pid="+strconv.Itoa(first)+" ")
	}) {
		t.Fatal("touching the restart marker did not recycle the app")
	}
	if !eventually(t, func() bool { return processGone(first) }) {
		t.Errorf("recycled process %d still runs", first)
	}
}

// TestOfflineDuringRecycle: a web.config change starts a recycle whose new
// process is slow to start; app_offline.htm appearing meanwhile must still
// stop the app then, not when the recycle is over, and the settings
// changed while offline are the ones used after it. The new process would
// listen only after an hour and its startupTimeLimit is an hour, so the
// recycle cannot end on its own while the test runs: a stop that waited
// for it would never come (and the startup-timeout kill would be logged).
// Nothing here depends on how soon the stop comes.
func TestOfflineDuringRecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1"})
	s := openSite(t, dir)
	s.mustGet()

	hour := int(time.Hour / time.Millisecond)
	writeConfig(t, dir, appConfig{Greeting: "v2", DelayMS: hour, StartupTimeLimit: 3600})
	// The new process recorded its pid: it is in its hour before listening.
	if !eventually(t, func() bool { return len(s.pids()) == 2 }) {
		t.Fatalf("recycle did not start a new process: %+v", s.app.Pool().Processes())
	}
	writeFile(t, filepath.Join(dir, "app_offline.htm"), page1)
	if !eventually(t, func() bool { return s.offlineServed(page1) }) {
		t.Fatal("app_offline.htm not served during a recycle")
	}
	if !eventually(t, s.allGone) {
		t.Fatalf("app not stopped during a recycle: %+v", s.app.Pool().Processes())
	}
	if len(s.log.Find("killing process that did not become ready")) != 0 {
		t.Fatal("the app was stopped only when the recycle's startup timed out")
	}
	if !eventually(t, func() bool { return len(s.log.Find("recycle cut short: the app was stopped")) == 1 }) {
		t.Fatal("the recycle did not end with the stop")
	}

	// Changed while offline, then back online: the newest settings run.
	writeConfig(t, dir, appConfig{Greeting: "v3"})
	if !eventually(t, func() bool { return len(s.log.Find("web.config changed")) == 2 }) {
		t.Fatal("web.config change while offline not seen")
	}
	if !s.offlineServed(page1) {
		t.Error("a web.config change ended the offline state")
	}
	if err := os.Remove(filepath.Join(dir, "app_offline.htm")); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, func() bool { _, b := s.get(10 * time.Second); return strings.HasSuffix(b, "greeting=v3") }) {
		t.Fatal("settings changed while offline not used")
	}
}

// TestOfflineRace: a request that passed the offline check starts a process
// just after app_offline.htm appeared and the watch loop stopped the app.
// That process must be stopped again, whether the request waits for it or
// gives up first. The one that gives up does so once its process has
// started, which would listen only after an hour: it gives up during the
// start however slow the machine. startupTimeLimit is an hour, so only the
// stop for app_offline.htm can end that start while the test runs.
func TestOfflineRace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		delayMS int  // the app's, before it listens
		givesUp bool // the client cancels once the process started
	}{
		{"waits", 1000, false},
		{"gives-up", int(time.Hour / time.Millisecond), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeConfig(t, dir, appConfig{Greeting: "v1", DelayMS: tc.delayMS, StartupTimeLimit: 3600})
			var s *site
			hooked := make(chan struct{})
			s = openSite(t, dir, func(a *App) {
				a.testHookAcquire = func() {
					select {
					case <-hooked:
						return // only the first request
					default:
						close(hooked)
					}
					if err := os.WriteFile(filepath.Join(dir, "app_offline.htm"), []byte(page1), 0o644); err != nil {
						t.Error(err)
					}
					// The watch loop has stopped the (empty) pool: whatever
					// this request starts comes after that stop.
					eventually(t, func() bool { return len(s.log.Find("app stopped for app_offline.htm")) > 0 })
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type answer struct {
				code int
				body string
			}
			res := make(chan answer, 1)
			go func() { code, body := s.getCtx(ctx); res <- answer{code, body} }() // ends with its request; awaited below
			started := eventually(t, func() bool { return len(s.log.Find("process started")) == 1 })
			if tc.givesUp {
				cancel()
			}
			got := <-res
			if !tc.givesUp && (got.code != http.StatusServiceUnavailable || got.body != page1) {
				t.Errorf("racing request: %d %q, want 503 with the file", got.code, got.body)
			}
			select {
			case <-hooked:
			default:
				t.Fatal("the hook did not run")
			}
			// (Its pid file may never appear: under load the process can be
			// stopped before it gets that far.)
			if !started {
				t.Fatal("the racing request started no process")
			}
			if !eventually(t, s.allGone) {
				t.Errorf("process started by the racing request still runs while offline: %+v", s.app.Pool().Processes())
			}
			if len(s.log.Find("stopping process")) != 1 || len(s.log.Find("killing process that did not become ready")) != 0 {
				t.Error("the process started by the racing request was not stopped for app_offline.htm")
			}
			if !s.offlineServed(page1) {
				t.Error("app_offline.htm not served after the race")
			}
		})
	}
}

// TestCloseDuringStartup: Close stops a process that is still starting
// rather than waiting for it to become ready or to time out. The app
// would listen only after an hour, so a Close that waited would end with
// the startup timeout (startupTimeLimit is 10 s) and its log record.
func TestCloseDuringStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1", DelayMS: int(time.Hour / time.Millisecond)})
	s := openSite(t, dir)
	res := make(chan int, 1)
	go func() { code, _ := s.get(time.Minute); res <- code }()
	if !eventually(t, func() bool {
		ps := s.app.Pool().Processes()
		return len(ps) == 1 && ps[0].PID != 0
	}) {
		t.Fatal("no process started")
	}
	if err := s.app.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.log.Find("killing process that did not become ready")); n != 0 {
		t.Error("Close waited for the startup timeout instead of stopping the starting process")
	}
	if len(s.log.Find("stopping process")) != 1 {
		t.Error("the starting process was not stopped")
	}
	if code := <-res; code != http.StatusServiceUnavailable {
		t.Errorf("request waiting for the start got %d, want 503", code)
	}
	if !s.allGone() {
		t.Errorf("processes left after Close: %+v", s.app.Pool().Processes())
	}
}

// TestTouchDoesNotRecycle: a touch, a mode-preserving chmod and a rewrite
// with the same bytes of web.config recycle nothing; a real change does.
func TestTouchDoesNotRecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1"})
	s := openSite(t, dir)
	first := s.mustGet()
	file := filepath.Join(dir, "web.config")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, func() bool { return len(s.log.Find("without a change of content")) > 0 }) {
		t.Fatal("the unchanged web.config was not recognised as unchanged")
	}
	if got := s.mustGet(); got != first || len(s.log.Find("web.config changed")) != 0 {
		t.Fatalf("after a touch the app answers %q (was %q), %d recycles", got, first, len(s.log.Find("web.config changed")))
	}
	writeConfig(t, dir, appConfig{Greeting: "v2"})
	if !eventually(t, func() bool { _, b := s.get(10 * time.Second); return strings.HasSuffix(b, "greeting=v2") }) {
		t.Fatal("a real change was not picked up")
	}
}

// TestConfigSourceChange: a file that web.config's configSource names
// (a URL Rewrite map) is part of the configuration: changing only it takes
// effect as a web.config change does.
func TestConfigSourceChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	maps := func(v string) string {
		return `<rewriteMaps><rewriteMap name="M"><add key="k" value="` + v + `" /></rewriteMap></rewriteMaps>`
	}
	writeFile(t, filepath.Join(dir, "maps", "rewritemaps.config"), maps("v1"))
	writeConfig(t, dir, appConfig{Greeting: "v1", WebServer: `<rewrite><rules><rule name="m"><match url=".*" />
<action type="Rewrite" url="{M:{R:0}}" /></rule></rules><rewriteMaps configSource="maps\rewritemaps.config" /></rewrite>`})
	s := openSite(t, dir)
	value := func() string {
		rw := s.app.Config().Rewrite
		if rw == nil || len(rw.Maps) != 1 || len(rw.Maps[0].Entries) != 1 {
			return ""
		}
		return rw.Maps[0].Entries[0].Value
	}
	if got := value(); got != "v1" {
		t.Fatalf("map value %q, want v1", got)
	}
	writeFile(t, filepath.Join(dir, "maps", "rewritemaps.config"), maps("v2"))
	if !eventually(t, func() bool { return value() == "v2" }) {
		t.Fatalf("a change of the configSource file was not picked up (map value %q)", value())
	}
}

// TestReloadSwapsSettingsWhole: the settings a request took with Current
// stay one version (stages, forwarder, web.config) while web.config
// changes, and the next request gets the new version, all of it.
func TestReloadSwapsSettingsWhole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	headers := func(v string) string {
		return `<httpProtocol><customHeaders><add name="X-Version" value="` + v + `" /></customHeaders></httpProtocol>`
	}
	writeConfig(t, dir, appConfig{Greeting: "v1", WebServer: headers("1")})
	s := openSite(t, dir)
	before := s.app.Current()
	chain, handler, cfg := before.Chain(), before.(*state).handler, s.app.Config()
	if chain == nil {
		t.Fatal("no stages for <customHeaders>")
	}
	writeConfig(t, dir, appConfig{Greeting: "v2", WebServer: headers("2")})
	if !eventually(t, func() bool { return len(s.log.Find("web.config changed; recycling")) == 1 }) {
		t.Fatal("the web.config change was not picked up")
	}
	if before.Chain() != chain || before.(*state).handler != handler || before.(*state).cfg != cfg {
		t.Error("the settings a request took changed under it")
	}
	after := s.app.Current()
	if after.Chain() == chain || after.(*state).handler == handler || after.(*state).cfg == cfg || s.app.Config() != after.(*state).cfg {
		t.Error("the new settings are not all in force")
	}
	if s.app.Chain() != after.Chain() {
		t.Error("Chain and Current disagree")
	}
}

// TestOperatorStop: after Stop requests get 503 and start nothing, and the
// app says "stopped", until Start.
func TestOperatorStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, appConfig{Greeting: "v1"})
	s := openSite(t, dir)
	first := pidOf(t, s.mustGet())
	if err := s.app.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !processGone(first) {
		t.Errorf("process %d still runs after Stop returned", first)
	}
	if code, body := s.get(10 * time.Second); code != http.StatusServiceUnavailable {
		t.Errorf("request to a stopped app: %d %q, want 503", code, body)
	}
	if st := s.app.Status(); st.State != "stopped" || len(s.pids()) != 1 {
		t.Errorf("after Stop: state %q, %d processes started; want stopped, 1", st.State, len(s.pids()))
	}
	if err := s.app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := s.app.Status(); st.State != "ready" {
		t.Errorf("after Start: state %q, want ready", st.State)
	}
	if pid := pidOf(t, s.mustGet()); pid == first {
		t.Errorf("same process %d after Stop and Start", pid)
	}
}
