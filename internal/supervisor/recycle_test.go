package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

func TestRecycleUnderLoad(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo", "GH_TAG=v1")
	spec.Processes = 2
	spec.DrainTimeout = 5 * time.Second
	f := newFixture(t, spec)
	ctx := ctxT(t, 30*time.Second)
	if err := f.pool.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var olds []int
	for _, p := range f.pool.Processes() {
		olds = append(olds, p.PID)
	}

	var ok, failed atomic.Int64
	var maxWait atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				l, err := f.pool.Acquire(ctx)
				if w := int64(time.Since(start)); w > maxWait.Load() {
					maxWait.Store(w)
				}
				if err != nil {
					failed.Add(1)
					t.Errorf("Acquire: %v", err)
					return
				}
				_, err = get(t, l.Addr, l.Token, "?hold_ms=20")
				l.Release()
				if err != nil {
					failed.Add(1)
					t.Errorf("request to %d: %v", l.PID, err)
					return
				}
				ok.Add(1)
			}
		})
	}
	if !waitFor(10*time.Second, func() bool { return ok.Load() > 20 || failed.Load() > 0 }) || failed.Load() > 0 {
		close(stop)
		wg.Wait()
		t.Fatalf("load never got going before the recycle: %d ok, %d failed", ok.Load(), failed.Load())
	}
	next := spec
	next.Env = append(append([]string(nil), spec.Env...), "GH_TAG=v2")
	start := time.Now()
	if err := f.pool.Recycle(ctx, &next); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	before := ok.Load()
	served := waitFor(10*time.Second, func() bool { return ok.Load() > before+20 || failed.Load() > 0 })
	close(stop)
	wg.Wait()
	if !served {
		t.Fatalf("no requests served after the recycle: %d ok before, %d after", before, ok.Load())
	}
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during recycle", failed.Load())
	}
	for _, pid := range olds {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("old pid %d still exists: %v", pid, err)
		}
	}
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := get(t, l.Addr, l.Token, "")
	l.Release()
	if err != nil || r.Env["GH_TAG"] != "v2" || r.PID == olds[0] || r.PID == olds[1] {
		t.Errorf("after recycle: reply %+v err %v (old %v)", r, err, olds)
	}
	if n := len(f.pool.Processes()); n != 2 {
		t.Errorf("%d processes after recycle", n)
	}
	t.Logf("recycle of 2 processes under 8 concurrent clients: %d requests ok, 0 failed, recycle took %s, longest Acquire %s",
		ok.Load(), took.Round(time.Millisecond), time.Duration(maxWait.Load()).Round(time.Millisecond))
}

func TestRecycleFailureKeepsOld(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := l.PID
	l.Release()
	bad := spec
	bad.Env = append(append([]string(nil), spec.Env...), "GH_HELPER=exit", "GH_CODE=4")
	err = f.pool.Recycle(ctx, &bad)
	if se, ok := errors.AsType[*upstream.StartError](err); !ok || se.ExitCode != 4 {
		t.Fatalf("Recycle = %v, want the StartError", err)
	}
	l, err = f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.PID != old {
		t.Errorf("lease on %d, want the old process %d still serving", l.PID, old)
	}
}

// pending reports whether an Acquire running in the background has returned.
func acquireAsync(f *fixture) chan error {
	ch := make(chan error, 1)
	go func() {
		l, err := f.pool.Acquire(f.t.Context())
		if err == nil {
			l.Release()
		}
		ch <- err
	}()
	return ch
}

func TestReadinessProbe(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "healthy")
	spec := helperSpec(t, "echo", "GH_FILE="+gate)
	spec.ReadinessProbe = "/healthz"
	f := newFixture(t, spec)
	res := acquireAsync(f)
	// The app answers 503 to the supervisor's own probe: it listens, but
	// must not get a lease yet.
	if !waitFor(5*time.Second, func() bool { _, err := os.Stat(gate + ".probed"); return err == nil }) {
		t.Fatal("probe never reached the app")
	}
	select {
	case err := <-res:
		t.Fatalf("Acquire returned (%v) before the probe passed", err)
	default:
	}
	if ps := f.pool.Processes(); len(ps) != 1 || ps[0].State != "starting" {
		t.Errorf("Processes() = %+v, want one starting", ps)
	}
	os.WriteFile(gate, nil, 0o644)
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not return after the probe passed")
	}
}

// TestH2CProbeAndShutdownEvent checks that for an app that speaks only
// h2c (Spec.H2C) the readiness probe and the shutdown event go over HTTP/2
// with prior knowledge.
func TestH2CProbeAndShutdownEvent(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "healthy")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := helperSpec(t, "echo", "GH_FILE="+gate, "GH_H2C=1")
	spec.ReadinessProbe = "/healthz"
	spec.H2C = true
	spec.ShutdownTimeout = 5 * time.Second
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if recs := f.log.Find("sent shutdown event"); len(recs) != 1 || recs[0].Attrs["status"] != "202" {
		t.Errorf("shutdown event log %+v, want status 202", recs)
	}
}

func TestNotifyReady(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "ready")
	spec := helperSpec(t, "notify", "GH_FILE="+gate)
	spec.NotifyReady = true
	f := newFixture(t, spec)
	res := acquireAsync(f)
	// Wait until the app listens; it has not sent READY=1 yet.
	if !waitFor(5*time.Second, func() bool {
		ps := f.pool.Processes()
		return len(ps) == 1 && ps[0].Addr != "" && dialOK(ps[0].Addr)
	}) {
		t.Fatal("app never listened")
	}
	select {
	case err := <-res:
		t.Fatalf("Acquire returned (%v) before READY=1", err)
	default:
	}
	os.WriteFile(gate, nil, 0o644)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	l, err := f.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r, err := get(t, l.Addr, l.Token, "")
	l.Release()
	sock := r.Env["NOTIFY_SOCKET"]
	if err != nil || sock == "" {
		t.Fatalf("reply %+v %v", r, err)
	}
	if err := f.pool.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
		t.Errorf("notify socket folder %s left behind (%v)", filepath.Dir(sock), err)
	}
}

func dialOK(addr string) bool {
	c, err := (&netDialer).Dial("tcp4", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// idle reports whether the idle timer would stop the pool's processes once
// IdleTimeout has passed since their last use: the decision of idleLoop,
// taken on the pool's state as it is.
func (f *fixture) idle() bool {
	f.pool.mu.Lock()
	defer f.pool.mu.Unlock()
	return f.pool.idleCandidateLocked()
}

func TestIdleStop(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	spec.IdleTimeout = 300 * time.Millisecond
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A held lease is use: the pool is not idle however long it is held.
	if f.idle() {
		t.Fatal("the pool counts as idle while a lease is outstanding")
	}
	l.Release()
	if !waitFor(5*time.Second, func() bool { return len(f.pool.Processes()) == 0 && processGone(l.PID) }) {
		t.Fatalf("not stopped after idle timeout: %+v", f.pool.Processes())
	}
	if len(f.log.Find("app idle")) != 1 {
		t.Errorf("idle stop not logged")
	}
	l2, err := f.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	if l2.PID == l.PID {
		t.Errorf("same pid after idle stop")
	}
}

// A recycled process that still drains a request keeps the app from
// counting as idle, so idle shutdown cannot cut the drain short.
func TestIdleWaitsForDrain(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	spec.IdleTimeout = 300 * time.Millisecond
	spec.DrainTimeout = 10 * time.Second
	f := newFixture(t, spec)
	old, err := f.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recycled := make(chan error, 1)
	go func() { recycled <- f.pool.Recycle(t.Context(), nil) }()
	draining := func() bool {
		for _, pi := range f.pool.Processes() {
			if pi.PID == old.PID && pi.State == "draining" {
				return true
			}
		}
		return false
	}
	if !waitFor(5*time.Second, draining) {
		t.Fatalf("the old process never drained: %+v", f.pool.Processes())
	}
	// The replacement is ready and unused; the old process's request alone
	// keeps the app from being idle.
	if f.idle() {
		t.Fatalf("the pool counts as idle while the recycled process drains a request: %+v", f.pool.Processes())
	}
	old.Release()
	if err := <-recycled; err != nil {
		t.Fatalf("recycle: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return processGone(old.PID) && len(f.pool.Processes()) == 0 }) {
		t.Fatalf("after the drain the app was not stopped as idle: %+v", f.pool.Processes())
	}
}

// A lease on a process that was stopped without a drain is use too, until
// it is released: the pool's idle time starts then, not at the lease.
func TestIdleWaitsForStoppedProcessLease(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	spec.IdleTimeout = 300 * time.Millisecond
	f := newFixture(t, spec)
	old, err := f.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.pool.Recycle(t.Context(), nil); err != nil { // no DrainTimeout: old is stopped
		t.Fatalf("recycle: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return processGone(old.PID) }) {
		t.Fatalf("the old process was not stopped: %+v", f.pool.Processes())
	}
	// The replacement is ready and unused; the lease on the stopped
	// process alone keeps the app from being idle.
	if f.idle() {
		t.Fatalf("the pool counts as idle while a lease on a stopped process is outstanding: %+v", f.pool.Processes())
	}
	old.Release()
	if !waitFor(5*time.Second, func() bool { return len(f.pool.Processes()) == 0 }) {
		t.Fatalf("after the release the app was not stopped as idle: %+v", f.pool.Processes())
	}
}

// A request that waited for a slow start and gave up is use of the app
// all the same (it arrived): the idle time runs from when it gave up, not
// from an older last use, so the app it had started is not stopped as soon
// as it is ready.
func TestIdleCountsAbandonedWait(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "healthy")
	spec := helperSpec(t, "echo", "GH_FILE="+gate)
	spec.ReadinessProbe = "/healthz" // not ready until gate exists
	const idle = time.Second
	spec.IdleTimeout = idle
	stopped := make(chan time.Time, 1)
	spec.Events = func(e Event) {
		if e.Kind == ProcessExited && e.Cause == CauseIdle {
			select {
			case stopped <- time.Now():
			default:
			}
		}
	}
	f := newFixture(t, spec) // the pool's last use: now
	// The request waits for the start longer than the idle timeout, then
	// gives up; it cannot give up before its deadline.
	ctx, cancel := context.WithTimeout(t.Context(), idle*3/2)
	defer cancel()
	gaveUp, _ := ctx.Deadline()
	if l, err := f.pool.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			l.Release()
		}
		t.Fatalf("Acquire: %v, want it to give up at its deadline while the app starts", err)
	}
	if ps := f.pool.Processes(); len(ps) != 1 || ps[0].State != "starting" {
		t.Fatalf("Processes() = %+v, want one starting", ps)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil { // the start ends
		t.Fatal(err)
	}
	select {
	case at := <-stopped:
		if d := at.Sub(gaveUp); d < idle {
			t.Errorf("stopped as idle %v after the request gave up, want at least the idle timeout %v", d, idle)
		}
	case <-time.After(15 * time.Second): // keeps a hang from hanging the test
		t.Fatalf("the app was never stopped as idle: %+v", f.pool.Processes())
	}
}

func TestLogRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := helperSpec(t, "flood", "GH_BYTES=200000")
	spec.StdoutLog = filepath.Join(dir, "stdout")
	spec.StdoutLogMaxSize = 16 << 10
	spec.StdoutLogMaxFiles = 3
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := f.pool.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	re := regexp.MustCompile(`^stdout_\d{14}_` + strconv.Itoa(os.Getpid()) + `(_\d{3})?\.log$`)
	if len(ents) != 3 {
		for _, e := range ents {
			t.Log(e.Name())
		}
		t.Errorf("%d files, want 3", len(ents))
	}
	for _, e := range ents {
		fi, _ := e.Info()
		if !re.MatchString(e.Name()) || fi.Size() > spec.StdoutLogMaxSize {
			t.Errorf("file %s size %d", e.Name(), fi.Size())
		}
	}
}

func TestLogFileRotationNames(t *testing.T) {
	t.Parallel()
	prefix := filepath.Join(t.TempDir(), "x", "out")
	lf, err := openLogFile(prefix, 10, 0, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		lf.Write([]byte("0123456\n89"))
	}
	lf.Close()
	files := logFiles(prefix)
	var total int64
	for i, f := range files {
		fi, _ := os.Stat(f.path)
		total += fi.Size()
		// A line begun in a file is finished there (see TestLogFileRotationAtLineEnds).
		if fi.Size() > 10+int64(len("0123456\n")) {
			t.Errorf("%s: %d bytes", f.path, fi.Size())
		}
		if i > 0 && filepath.Base(files[i-1].path) >= filepath.Base(f.path) {
			t.Errorf("names do not sort: %s then %s", files[i-1].path, f.path)
		}
	}
	if total != 50 {
		t.Errorf("total %d bytes, want 50", total)
	}
}

func TestSocketActivation(t *testing.T) {
	t.Parallel()
	for _, shim := range []struct{ name, shell string }{
		{"shell shim", "/bin/sh"},
		{"gatehouse shim", ""}, // ShimMain, where there is no /bin/sh
	} {
		t.Run(shim.name, func(t *testing.T) {
			t.Parallel()
			if shim.shell != "" {
				if _, err := os.Stat(shim.shell); err != nil {
					t.Skip(err)
				}
			}
			spec := helperSpec(t, "echo")
			spec.SocketActivation = true
			f := newFixture(t, spec, withShell(shim.shell))
			l, err := f.pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			r, err := get(t, l.Addr, l.Token, "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Env["LISTEN_PID"] != strconv.Itoa(r.PID) || r.PID != l.PID || r.Env["LISTEN_FDS"] != "1" ||
				r.Env["LISTEN_FDNAMES"] != "http" {
				t.Errorf("reply %+v lease pid %d", r, l.PID)
			}
			if _, ok := r.Env[shimEnv]; ok {
				t.Errorf("%s leaked into the app", shimEnv)
			}
		})
	}
}

var netDialer = net.Dialer{Timeout: time.Second}

func nopLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRecycleFixedPort(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	spec := helperSpec(t, "echo", "ASPNETCORE_PORT="+strconv.Itoa(port))
	spec.DrainTimeout = time.Second
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := f.pool.Recycle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(l.PID, 0); err != syscall.ESRCH {
		t.Errorf("old pid %d not gone: %v", l.PID, err)
	}
	l2, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	if l2.PID == l.PID || l2.Addr != l.Addr {
		t.Errorf("after recycle: %s pid %d, before %s pid %d", l2.Addr, l2.PID, l.Addr, l.PID)
	}
}

// TestChaos mixes Acquire, Stop, Recycle and crashes, to shake out races
// and deadlocks; the only errors allowed are the ones Stop causes.
func TestChaos(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "crash-after", "GH_N=25")
	spec.Processes = 2
	spec.RapidFailsPerMinute = 100
	spec.DrainTimeout = 200 * time.Millisecond
	spec.ShutdownTimeout = time.Second
	f := newFixture(t, spec)
	ctx := ctxT(t, 30*time.Second)
	deadline := time.Now().Add(1500 * time.Millisecond)
	var ok, shut atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				l, err := f.pool.Acquire(ctx)
				if errors.Is(err, upstream.ErrShuttingDown) {
					shut.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				get(t, l.Addr, l.Token, "") // may fail: the process crashes by design
				l.Release()
				ok.Add(1)
			}
		})
	}
	wg.Go(func() {
		for i := 0; time.Now().Before(deadline); i++ {
			if i%2 == 0 {
				f.pool.Stop(ctx)
			} else if err := f.pool.Recycle(ctx, nil); err != nil && !errors.Is(err, upstream.ErrStartupFailed) {
				t.Errorf("Recycle: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // pacing, not an assertion
		}
	})
	wg.Wait()
	t.Logf("chaos: %d leases, %d ErrShuttingDown, %d processes started", ok.Load(), shut.Load(), len(f.helperPIDs()))
}
