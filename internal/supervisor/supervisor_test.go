package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/logtest"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

var tokenRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestAcquireStartsProcess(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "echo"))
	if n := len(f.pool.Processes()); n != 0 {
		t.Fatalf("before Acquire: %d processes, want 0 (start is lazy)", n)
	}
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r, err := get(t, l.Addr, l.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.PID != l.PID || r.Token != l.Token || r.GotToken != l.Token {
		t.Errorf("reply %+v, lease pid %d token %s", r, l.PID, l.Token)
	}
	if !tokenRE.MatchString(l.Token) {
		t.Errorf("token %q is not a lowercase GUID", l.Token)
	}
	ps := f.pool.Processes()
	if len(ps) != 1 || ps[0].State != "ready" || ps[0].PID != l.PID || ps[0].Outstanding != 1 {
		t.Errorf("Processes() = %+v", ps)
	}
	// The events are logged after the pool applied them, so the ready
	// record may come just after Acquire returned.
	logged := waitFor(5*time.Second, func() bool {
		return len(f.log.Find("process started")) == 1 && len(f.log.Find("process ready")) == 1
	})
	if !logged {
		t.Errorf("missing start/ready logs")
	}
}

func TestConcurrentAcquireDuringStartup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "slow", "GH_DELAY_MS=400"))
	const n = 20
	pids := make(chan int, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
			if err != nil {
				errs <- err
				return
			}
			pids <- l.PID
			l.Release()
		})
	}
	wg.Wait()
	close(errs)
	close(pids)
	for err := range errs {
		t.Error(err)
	}
	seen := map[int]bool{}
	for p := range pids {
		seen[p] = true
	}
	if len(seen) != 1 || len(f.helperPIDs()) != 1 {
		t.Errorf("pids %v, helper processes %v; want exactly one", seen, f.helperPIDs())
	}
}

func TestChildEnv(t *testing.T) {
	t.Parallel()
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		spec := helperSpec(t, "echo", "PORT=1", "aspnetcore_token=", "ASPNETCORE_APPL_PATH=/app")
		f := newFixture(t, spec)
		l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		r, err := get(t, l.Addr, l.Token, "")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr)
		n, _ := strconv.Atoi(port)
		if n < minRandomPort || n > maxPort {
			t.Errorf("port %d outside %d–%d", n, minRandomPort, maxPort)
		}
		for _, k := range []string{"ASPNETCORE_PORT", "HTTP_PLATFORM_PORT", "PORT"} {
			if r.Env[k] != port {
				t.Errorf("%s = %q, want %s", k, r.Env[k], port)
			}
		}
		if r.Env["ASPNETCORE_TOKEN"] != l.Token || !tokenRE.MatchString(l.Token) {
			t.Errorf("token env %q lease %q", r.Env["ASPNETCORE_TOKEN"], l.Token)
		}
		if r.Env["ASPNETCORE_APPL_PATH"] != "/app" {
			t.Errorf("APPL_PATH %q", r.Env["ASPNETCORE_APPL_PATH"])
		}
	})
	t.Run("fixed", func(t *testing.T) {
		t.Parallel()
		port := freePort(t)
		f := newFixture(t, helperSpec(t, "echo", "ASPNETCORE_PORT="+strconv.Itoa(port), "ASPNETCORE_TOKEN=fixed-token"))
		l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		r, err := get(t, l.Addr, l.Token, "")
		if err != nil {
			t.Fatal(err)
		}
		if l.Addr != fmt.Sprintf("127.0.0.1:%d", port) || l.Token != "fixed-token" || r.Env["PORT"] != strconv.Itoa(port) {
			t.Errorf("lease %s %s, env %v", l.Addr, l.Token, r.Env)
		}
	})
	t.Run("invalid-fixed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, helperSpec(t, "echo", "ASPNETCORE_PORT=1024"))
		_, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if se, ok := errors.AsType[*upstream.StartError](err); !ok || !strings.Contains(se.Error(), "ASPNETCORE_PORT") {
			t.Errorf("err = %v, want StartError about ASPNETCORE_PORT", err)
		}
	})
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestStartFailure(t *testing.T) {
	t.Parallel()
	for _, logged := range []bool{false, true} {
		t.Run(fmt.Sprintf("logfile=%v", logged), func(t *testing.T) {
			t.Parallel()
			spec := helperSpec(t, "exit", "GH_CODE=3")
			if logged {
				spec.StdoutLog = filepath.Join(t.TempDir(), "logs", "stdout")
			}
			f := newFixture(t, spec)
			_, err := f.pool.Acquire(ctxT(t, 10*time.Second))
			se, ok := errors.AsType[*upstream.StartError](err)
			if !ok || !errors.Is(err, upstream.ErrStartupFailed) {
				t.Fatalf("err = %v, want *StartError", err)
			}
			if se.ExitCode != 3 || se.Signal != "" || se.Reason != "process exited during startup" {
				t.Errorf("StartError %+v", se)
			}
			if !strings.Contains(se.Output, "out-marker") || !strings.Contains(se.Output, "err-marker") {
				t.Errorf("Output %q lacks the markers", se.Output)
			}
			if !strings.Contains(se.Command, os.Args[0][strings.LastIndexByte(os.Args[0], '/')+1:]) {
				t.Errorf("Command %q", se.Command)
			}
			if len(f.pool.Processes()) != 0 {
				t.Errorf("processes left: %+v", f.pool.Processes())
			}
		})
	}
	t.Run("missing-program", func(t *testing.T) {
		t.Parallel()
		spec := helperSpec(t, "echo")
		spec.Path = `.\nope.exe`
		f := newFixture(t, spec)
		_, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if !errors.Is(err, upstream.ErrStartupFailed) || !strings.Contains(err.Error(), "nope") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "never")
	spec.StartupTimeout = 300 * time.Millisecond
	f := newFixture(t, spec)
	start := time.Now()
	_, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	took := time.Since(start)
	se, ok := errors.AsType[*upstream.StartError](err)
	if !ok || !strings.Contains(se.Reason, "not listening on port") || !strings.Contains(se.Reason, "after 300ms") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(se.Output, "never listening") {
		t.Errorf("Output %q", se.Output)
	}
	if took < 300*time.Millisecond {
		t.Errorf("Acquire failed after %s, before the startup timeout", took)
	}
	if n := len(f.log.Find("killing process that did not become ready")); n != 1 {
		t.Errorf("%d kills of the process that did not become ready logged, want 1", n)
	}
	pids := f.helperPIDs()
	if len(pids) != 1 {
		t.Fatalf("helper pids %v", pids)
	}
	if err := syscall.Kill(pids[0], 0); err != syscall.ESRCH {
		t.Errorf("process %d still exists after the timeout (kill 0: %v)", pids[0], err)
	}
	t.Logf("startup timeout 300ms: Acquire failed after %s", took)
}

func TestStartupTimeoutZeroChecksOnce(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "never")
	spec.StartupTimeout = 0
	f := newFixture(t, spec)
	_, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if !errors.Is(err, upstream.ErrStartupFailed) {
		t.Fatalf("err = %v", err)
	}
}

func TestCrashRestarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "crash-after", "GH_N=1"))
	ctx := ctxT(t, 20*time.Second)
	l1, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, l1.Addr, l1.Token, ""); err != nil {
		t.Fatal(err)
	}
	l1.Release()
	select {
	case <-l1.Exited:
	case <-ctx.Done():
		t.Fatal("lease Exited not closed after the crash")
	}
	if !waitFor(5*time.Second, func() bool { return len(f.pool.Processes()) == 0 }) {
		t.Fatalf("slot not emptied: %+v", f.pool.Processes())
	}
	l2, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	if l2.PID == l1.PID || l2.Addr == l1.Addr || l2.Token == l1.Token {
		t.Errorf("second lease %s %d %s reuses the first %s %d %s", l2.Addr, l2.PID, l2.Token, l1.Addr, l1.PID, l1.Token)
	}
	waitFor(2*time.Second, func() bool { return len(f.log.Find("exited unexpectedly")) > 0 })
	if recs := f.log.Find("exited unexpectedly"); len(recs) != 1 || recs[0].Attrs["exit_code"] != "1" || recs[0].Attrs["uptime"] == "" {
		t.Errorf("crash log %+v", recs)
	}
}

// fakeClock is the rapid-fail window's clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestRapidFailLimit(t *testing.T) {
	t.Parallel()
	t.Run("start-failures", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		spec := helperSpec(t, "exit", "GH_CODE=1")
		spec.RapidFailsPerMinute = 1
		f := newFixture(t, spec, withClock(clock.now))
		ctx := ctxT(t, 20*time.Second)
		for i := range 2 { // failures 1 and 2: count 2 > limit 1 afterwards
			if _, err := f.pool.Acquire(ctx); !errors.Is(err, upstream.ErrStartupFailed) {
				t.Fatalf("attempt %d: err = %v, want StartError", i+1, err)
			}
		}
		clock.add(20 * time.Second)
		_, err := f.pool.Acquire(ctx)
		rf, ok := errors.AsType[*upstream.RapidFailError](err)
		if !ok || rf.Limit != 1 || rf.RetryAfter != 40*time.Second || !strings.Contains(rf.LastExit, "exited with code 1") {
			t.Fatalf("err = %v (%+v), want RapidFailError retry in 40s", err, rf)
		}
		if n := len(f.helperPIDs()); n != 2 {
			t.Errorf("%d processes were started, want 2 (none while refused)", n)
		}
		clock.add(40 * time.Second)
		if _, err := f.pool.Acquire(ctx); !errors.Is(err, upstream.ErrStartupFailed) {
			t.Fatalf("after the window: err = %v, want a new start (StartError)", err)
		}
	})
	t.Run("crashes-limit-0", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		spec := helperSpec(t, "crash-after", "GH_N=1")
		spec.RapidFailsPerMinute = 0
		f := newFixture(t, spec, withClock(clock.now))
		ctx := ctxT(t, 20*time.Second)
		l, err := f.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		get(t, l.Addr, l.Token, "")
		l.Release()
		<-l.Exited
		waitFor(5*time.Second, func() bool { return len(f.pool.Processes()) == 0 })
		if _, err := f.pool.Acquire(ctx); !errors.Is(err, upstream.ErrRapidFails) {
			t.Fatalf("err = %v, want ErrRapidFails after one crash with limit 0", err)
		}
		clock.add(time.Minute)
		l, err = f.pool.Acquire(ctx)
		if err != nil {
			t.Fatalf("after the window: %v", err)
		}
		l.Release()
	})
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"echo", "term-only"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			spec := helperSpec(t, mode)
			spec.ShutdownTimeout = 5 * time.Second
			f := newFixture(t, spec)
			l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			l.Release()
			start := time.Now()
			if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start) // reported, not asserted: no kill log proves it was graceful
			if !processGone(l.PID) {
				t.Errorf("pid %d alive after Stop", l.PID)
			}
			want := "202"
			if mode == "term-only" {
				want = "404"
			}
			waitFor(2*time.Second, func() bool { return len(f.log.Find("sent shutdown event")) > 0 })
			if recs := f.log.Find("sent shutdown event"); len(recs) != 1 || recs[0].Attrs["status"] != want {
				t.Errorf("shutdown event log %+v, want status %s", recs, want)
			}
			if len(f.log.Find("kill")) != 0 {
				t.Errorf("process was killed, not stopped")
			}
			if !l.ProcessExited() {
				t.Errorf("lease Exited not closed")
			}
			// The pool stays usable.
			l2, err := f.pool.Acquire(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if l2.PID == l.PID {
				t.Errorf("same pid after Stop")
			}
			l2.Release()
			t.Logf("%s: graceful stop took %s", mode, took)
		})
	}
}

func TestKillAfterShutdownTimeout(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "ignore-term")
	spec.ShutdownTimeout = 500 * time.Millisecond
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	start := time.Now()
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// The kill must not come before the limit; that it came at all is
	// asserted below (process gone, "did not stop" logged), not timed.
	if took < 500*time.Millisecond {
		t.Errorf("stop took %s: killed before shutdownTimeout (500ms)", took)
	}
	if err := syscall.Kill(l.PID, 0); err != syscall.ESRCH {
		t.Errorf("pid %d not gone: %v", l.PID, err)
	}
	if recs := f.log.Find("did not stop within shutdownTimeLimit"); len(recs) != 1 {
		t.Errorf("no forced-kill log")
	}
	recs := f.log.Find("process exited")
	if len(recs) != 1 || recs[0].Attrs["signal"] != "SIGKILL" {
		t.Errorf("exit log %+v", recs)
	}
	t.Logf("shutdownTimeLimit 500ms, SIGTERM ignored: stopped after %s", took)
}

func TestGrandchildKilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "grandchild"))
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, err := get(t, l.Addr, l.Token, "")
	l.Release()
	if err != nil || r.Grandchild == 0 {
		t.Fatalf("reply %+v err %v", r, err)
	}
	if processGone(r.Grandchild) {
		t.Fatalf("grandchild %d not running", r.Grandchild)
	}
	if err := f.pool.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(l.PID, 0); err != syscall.ESRCH {
		t.Errorf("child %d: kill 0 = %v, want ESRCH", l.PID, err)
	}
	if !waitFor(2*time.Second, func() bool { return processGone(r.Grandchild) }) {
		t.Errorf("grandchild %d survived Close", r.Grandchild)
	}
}

func TestGrandchildKilledOnCrash(t *testing.T) {
	t.Parallel()
	// The main process exits on its own; its group must still be killed.
	f := newFixture(t, helperSpec(t, "grandchild"))
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, err := get(t, l.Addr, l.Token, "")
	l.Release()
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(l.PID, syscall.SIGKILL)
	<-l.Exited
	if !waitFor(2*time.Second, func() bool { return processGone(r.Grandchild) }) {
		t.Errorf("grandchild %d survived its parent's crash", r.Grandchild)
	}
}

var logNameRE = regexp.MustCompile(`^stdout_\d{14}_` + strconv.Itoa(os.Getpid()) + `\.log$`)

func TestStdoutLogFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "logs")
	spec := helperSpec(t, "echo")
	spec.StdoutLog = filepath.Join(dir, "stdout")
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || !logNameRE.MatchString(ents[0].Name()) {
		t.Fatalf("log folder: %v %v", ents, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ents[0].Name()))
	if !strings.Contains(string(b), "listening on 127.0.0.1:") || !strings.Contains(string(b), "got shutdown event") {
		t.Errorf("log content %q", b)
	}
	if len(f.log.Find("listening on")) != 0 {
		t.Errorf("output went to the logger as well")
	}
	// Readable by its owner and group only.
	fi, err := ents[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if want := 0o640 &^ umask(t); fi.Mode().Perm() != want {
		t.Errorf("stdout log mode %v, want %v (0640 less the umask %03o)", fi.Mode().Perm(), want, umask(t))
	}
}

func TestStdoutLogUnwritable(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	spec := helperSpec(t, "echo")
	spec.StdoutLog = filepath.Join(file, "logs", "stdout") // under a file: cannot be created
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("app must still run: %v", err)
	}
	l.Release()
	if len(f.log.Find("could not create the stdout log file")) != 1 {
		t.Errorf("no warning")
	}
	if !waitFor(2*time.Second, func() bool { return len(f.log.Find("listening on")) == 1 }) {
		t.Errorf("output not sent to the logger")
	} else if rec := f.log.Find("listening on")[0]; rec.Attrs["stream"] != "stdout" || rec.Attrs["pid"] != strconv.Itoa(l.PID) || rec.Attrs["app"] == "" {
		t.Errorf("output record attrs %v", rec.Attrs)
	}
}

func TestTwoProcessesLeastOutstanding(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	spec.Processes = 2
	f := newFixture(t, spec)
	ctx := ctxT(t, 10*time.Second)
	if err := f.pool.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ps := f.pool.Processes()
	if len(ps) != 2 || ps[0].PID == ps[1].PID || ps[0].Addr == ps[1].Addr {
		t.Fatalf("Processes() = %+v", ps)
	}
	var held []*upstream.Lease
	count := map[int]int{}
	for range 10 {
		l, err := f.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		count[l.PID]++
	}
	if len(count) != 2 || count[ps[0].PID] != 5 {
		t.Errorf("10 held leases spread %v, want 5/5", count)
	}
	// Free three on one process: the next three go there.
	var a int
	for pid := range count {
		a = pid
		break
	}
	freed := 0
	for _, l := range held {
		if l.PID == a && freed < 3 {
			l.Release()
			freed++
		}
	}
	for range 3 {
		l, err := f.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l.PID != a {
			t.Errorf("lease went to %d, want the less loaded %d", l.PID, a)
		}
		held = append(held, l)
	}
	for _, l := range held {
		l.Release()
	}
}

func TestOutputFloodDoesNotBlock(t *testing.T) {
	t.Parallel()
	rec := logtest.New()
	block := make(chan struct{})
	rec.Hook = func(r logtest.Record) {
		if _, ok := r.Attrs["stream"]; ok {
			<-block // app output only: a stuck log handler
		}
	}
	spec := helperSpec(t, "flood", "GH_BYTES="+strconv.Itoa(16<<20))
	f := newFixture(t, spec, func(p *Pool) { p.log = slog.New(rec).With("app", spec.Name) })
	released := false
	release := func() {
		if !released {
			released = true
			close(block)
		}
	}
	t.Cleanup(release) // registered after newFixture's: runs before Close
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("app blocked by its own output: %v", err)
	}
	l.Release()
	release()
	if !waitFor(5*time.Second, func() bool { return len(rec.Find("dropped app output lines")) > 0 }) {
		t.Errorf("drops not reported")
	}
}

func TestMaxQueued(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "slow", "GH_DELAY_MS=1000")
	spec.MaxQueued = 2
	f := newFixture(t, spec)
	ctx := ctxT(t, 10*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			l, err := f.pool.Acquire(ctx)
			if err == nil {
				l.Release()
			}
			errs <- err
		})
	}
	waitFor(5*time.Second, func() bool { f.pool.mu.Lock(); defer f.pool.mu.Unlock(); return f.pool.waiters == 2 })
	if _, err := f.pool.Acquire(ctx); !errors.Is(err, upstream.ErrQueueFull) {
		t.Errorf("third waiter: err = %v, want ErrQueueFull", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("queued waiter: %v", err)
		}
	}
}

func TestStopFailsWaiters(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "slow", "GH_DELAY_MS=3000")
	f := newFixture(t, spec)
	errc := make(chan error, 1)
	go func() {
		_, err := f.pool.Acquire(context.Background())
		errc <- err
	}()
	waitFor(5*time.Second, func() bool { f.pool.mu.Lock(); defer f.pool.mu.Unlock(); return f.pool.waiters == 1 })
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, upstream.ErrShuttingDown) {
		t.Errorf("waiter: %v, want ErrShuttingDown", err)
	}
	if n := len(f.pool.Processes()); n != 0 {
		t.Errorf("%d processes after Stop", n)
	}
}

func TestAcquireContextCanceled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "slow", "GH_DELAY_MS=2000"))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := f.pool.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "echo"))
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.pool.Close(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	l.Release() // after Close: harmless
	if _, err := f.pool.Acquire(t.Context()); !errors.Is(err, upstream.ErrShuttingDown) {
		t.Errorf("Acquire after Close: %v", err)
	}
}

// A start whose port is taken is retried on a new port, not counted toward
// rapid-fail: the app really fails to bind the port; what holds it keeps it,
// or lets go of it before the exit is seen (as an outgoing connection given
// the port by the kernel does), when only the app's "address already in
// use" tells.
func TestPortRaceRetry(t *testing.T) {
	t.Parallel()
	for _, letGo := range []bool{false, true} {
		t.Run(fmt.Sprintf("let go %v", letGo), func(t *testing.T) {
			t.Parallel()
			taken, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			busy := taken.Addr().(*net.TCPAddr).Port
			spec := helperSpec(t, "echo")
			spec.RapidFailsPerMinute = 0 // a counted failure would refuse the next start
			var release sync.Once
			spec.Events = func(ev Event) {
				if letGo && ev.Kind == ProcessExited && ev.Port == busy {
					release.Do(func() { taken.Close() }) // before the owner looks at the port
				}
			}
			var calls int
			f := newFixture(t, spec, withPickPort(func() (int, error) {
				calls++ // only the starter calls it, one at a time
				if calls == 1 {
					return busy, nil
				}
				return pickPort()
			}))
			l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatalf("no retry on a new port: %v", err)
			}
			l.Release()
			if l.Addr == taken.Addr().String() || len(f.log.Find("retrying on a new port")) != 1 {
				t.Errorf("lease on %s (taken %s)", l.Addr, taken.Addr())
			}
			if letGo && !portFree(busy) {
				t.Errorf("port %d still taken: the test did not let go of it before the retry", busy)
			}
			st := f.pool.Status()
			f.pool.mu.Lock()
			counted := f.pool.fails.count
			f.pool.mu.Unlock()
			if st.LastStartError != "" || counted != 0 {
				t.Errorf("the taken port counted as a failure: last start error %q, %d failures in the window", st.LastStartError, counted)
			}
		})
	}
}

func TestCloseDeadlineKills(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "ignore-term")
	spec.ShutdownTimeout = 20 * time.Second
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := f.pool.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	// Killed because Close's deadline passed, not after ShutdownTimeout.
	if len(f.log.Find("killed process")) != 1 || len(f.log.Find("did not stop within shutdownTimeLimit")) != 0 {
		t.Errorf("the process was not killed at Close's deadline")
	}
	if err := syscall.Kill(l.PID, 0); err != syscall.ESRCH {
		t.Errorf("pid %d not gone after Close: %v", l.PID, err)
	}
}

func TestWaitersSurviveRestart(t *testing.T) {
	t.Parallel()
	// A crash while callers wait for the replacement: they get the new one.
	spec := helperSpec(t, "crash-after", "GH_N=1")
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	get(t, l.Addr, l.Token, "") // the process exits after answering
	<-l.Exited
	l.Release()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			l2, err := f.pool.Acquire(ctx)
			if err != nil {
				t.Errorf("waiter: %v", err)
				return
			}
			if l2.PID == l.PID {
				t.Errorf("lease on the crashed process")
			}
			l2.Release()
		})
	}
	wg.Wait()
}

func TestExitedBeforeOutputDrained(t *testing.T) {
	t.Parallel()
	// The app's grandchild leaves its process group and keeps the output
	// pipe open, so draining the output after the crash takes drainBound.
	// Lease holders must learn of the exit at once (the proxy waits only
	// briefly before it retries a GET), and the exited process must not get
	// new leases meanwhile.
	f := newFixture(t, helperSpec(t, "escape"))
	ctx := ctxT(t, 20*time.Second)
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r, err := get(t, l.Addr, l.Token, "")
	if err != nil || r.Grandchild == 0 {
		t.Fatalf("reply %+v err %v", r, err)
	}
	// Every process of this app leaves such a grandchild; they are killed
	// here, before the fixture's checks run: by the pids the apps reported
	// (a grandchild may not have written its pid file yet), and by pid file.
	grandchildren := []int{r.Grandchild}
	t.Cleanup(func() {
		for _, pid := range grandchildren {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range f.helperPIDs() {
			if b, _ := os.ReadFile(filepath.Join(f.pidDir, strconv.Itoa(pid))); string(b) == "sleep" {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	syscall.Kill(l.PID, syscall.SIGKILL)
	select {
	case <-l.Exited:
	case <-ctx.Done():
		t.Fatal("Lease.Exited not closed after the crash")
	}
	// The output drain ends drainBound after the exit, with the warning
	// below, and only then is the exit reported: Exited came first.
	if len(f.log.Find("app output still open")) != 0 || len(f.log.Find("process exited")) != 0 {
		t.Errorf("Lease.Exited closed only after the output drain ended")
	}
	l2, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Release()
	if l2.PID == l.PID {
		t.Errorf("lease on the exited process %d", l.PID)
	}
	r2, err := get(t, l2.Addr, l2.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	grandchildren = append(grandchildren, r2.Grandchild)
}

func TestCloseDeadlineWithSpawnInFlight(t *testing.T) {
	t.Parallel()
	// Close's deadline passes while a process is being spawned; the process
	// ignores SIGTERM. Close must still kill it at once, not wait out
	// ShutdownTimeout.
	spec := helperSpec(t, "sleep")
	spec.StartupTimeout = 20 * time.Second
	spec.ShutdownTimeout = 20 * time.Second
	entered, gate := make(chan struct{}), make(chan struct{})
	f := newFixture(t, spec, withPickPort(func() (int, error) {
		close(entered) // one start only
		<-gate
		return pickPort()
	}))
	acq := make(chan error, 1)
	go func() {
		_, err := f.pool.Acquire(context.Background())
		acq <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- f.pool.Close(ctx) }()
	if !waitFor(5*time.Second, func() bool {
		select {
		case <-f.pool.hurry:
			return true
		default:
			return false
		}
	}) {
		t.Fatal("Close did not hurry after its deadline")
	}
	close(gate)
	if err := <-closed; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	// Close did not wait out ShutdownTimeout: nothing was killed for
	// overrunning it.
	if len(f.log.Find("did not stop within shutdownTimeLimit")) != 0 {
		t.Errorf("Close waited for ShutdownTimeout despite its deadline")
	}
	if err := <-acq; !errors.Is(err, upstream.ErrShuttingDown) {
		t.Errorf("Acquire = %v, want ErrShuttingDown", err)
	}
}
