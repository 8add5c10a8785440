//go:build linux

package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// load keeps clients acquiring leases and sending requests to the pool
// until stop; every failure is a test error.
type load struct {
	t      *testing.T
	ok     atomic.Int64
	failed atomic.Int64
	pids   sync.Map // pid → true: processes that answered
	done   chan struct{}
	wg     sync.WaitGroup
}

func startLoad(t *testing.T, f *fixture, clients int) *load {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	l := &load{t: t, done: make(chan struct{})}
	for range clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.done:
					return
				default:
				}
				lease, err := f.pool.Acquire(ctx)
				if err != nil {
					l.failed.Add(1)
					t.Errorf("Acquire: %v", err)
					return
				}
				r, err := get(t, lease.Addr, lease.Token, "?hold_ms=5")
				lease.Release()
				if err != nil {
					l.failed.Add(1)
					t.Errorf("request to pid %d: %v", lease.PID, err)
					return
				}
				l.pids.Store(r.PID, true)
				l.ok.Add(1)
			}
		})
	}
	return l
}

// stop ends the load and checks that no request failed.
func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
	if n := l.failed.Load(); n != 0 {
		l.t.Errorf("%d requests failed", n)
	}
}

func (l *load) distinctPIDs() int {
	n := 0
	l.pids.Range(func(any, any) bool { n++; return true })
	return n
}

// events collects the pool's events for a test.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) find(match func(Event) bool) (Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if match(ev) {
			return ev, true
		}
	}
	return Event{}, false
}

// TestRecycleConditionsUnderLoad triggers each recycling condition with
// small limits while clients keep sending requests: each must recycle the
// pool (overlapped), be reported with its condition, and fail no request.
func TestRecycleConditionsUnderLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cond      string
		processes int
		policy    func(f *fixture) RecyclePolicy
		want      int64 // recycles to wait for
	}{
		{"periodicRestart time", ConditionTime, 2, func(*fixture) RecyclePolicy {
			return RecyclePolicy{Time: 300 * time.Millisecond}
		}, 2},
		{"periodicRestart requests", ConditionRequests, 2, func(*fixture) RecyclePolicy {
			return RecyclePolicy{Requests: 40}
		}, 2},
		{"periodicRestart schedule", ConditionSchedule, 1, func(*fixture) RecyclePolicy {
			// A whole second of local time 1.5–2.5s ahead: the policy must be
			// in force before it (a busy machine may take a while).
			at := time.Now().Add(2500 * time.Millisecond).Truncate(time.Second)
			y, m, d := at.Date()
			return RecyclePolicy{Schedule: []time.Duration{at.Sub(time.Date(y, m, d, 0, 0, 0, 0, at.Location()))}}
		}, 1},
		{"periodicRestart privateMemory", ConditionPrivateMemory, 1, func(f *fixture) RecyclePolicy {
			// Over the helper's own private memory by 32 MiB; /alloc adds 64.
			l, err := f.pool.Acquire(ctxT(f.t, 10*time.Second))
			if err != nil {
				f.t.Fatal(err)
			}
			base, err := groupPrivateMemory(l.PID)
			l.Release()
			if err != nil {
				f.t.Fatal(err)
			}
			return RecyclePolicy{PrivateMemory: base + 32<<20, PrivateMemoryWindow: 100 * time.Millisecond}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var evs events
			spec := helperSpec(t, "echo")
			spec.Processes = tt.processes
			spec.DrainTimeout = 5 * time.Second
			spec.Events = evs.add
			f := newFixture(t, spec, withPolicyTick(20*time.Millisecond))
			ctx := ctxT(t, time.Minute)
			if err := f.pool.Start(ctx); err != nil {
				t.Fatal(err)
			}
			first := f.pool.Processes()
			// The policy is set through Recycle(spec), as a reload would.
			next := spec
			next.AppPool.Recycling = tt.policy(f)
			if err := f.pool.Recycle(ctx, &next); err != nil {
				t.Fatal(err)
			}
			l := startLoad(t, f, 4)
			if tt.cond == ConditionPrivateMemory {
				lease, err := f.pool.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := plainGet("http://" + lease.Addr + "/alloc?mb=64")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				lease.Release()
			}
			recycled := waitFor(30*time.Second, func() bool { return f.pool.RecycleCounts()[tt.cond] >= tt.want })
			before := l.ok.Load()
			serving := waitFor(10*time.Second, func() bool { return l.ok.Load() > before+10 || l.failed.Load() > 0 })
			l.stop()
			if !recycled {
				t.Fatalf("no %d recycles for %s; counts %v", tt.want, tt.cond, f.pool.RecycleCounts())
			}
			if !serving {
				t.Fatalf("not serving after the recycle: %d requests ok", l.ok.Load())
			}
			ev, ok := evs.find(func(e Event) bool { return e.Kind == RecycleConditionMet && e.Condition == tt.cond })
			if !ok || !strings.Contains(ev.Detail, "periodicRestart "+tt.cond) {
				t.Errorf("no RecycleConditionMet event for %s (got %+v)", tt.cond, ev)
			}
			if st := f.pool.Status(); st.Recycles[tt.cond] < tt.want {
				t.Errorf("Status().Recycles = %v, want %d for %s", st.Recycles, tt.want, tt.cond)
			}
			if !(len(f.log.Find("recycle condition met; recycling the app")) > 0) {
				t.Error("the recycle was not logged")
			}
			if _, ok := evs.find(func(e Event) bool { return e.Kind == ProcessRecycled }); !ok {
				t.Error("no ProcessRecycled event: the recycle did not overlap")
			}
			for _, p := range first {
				if !waitFor(10*time.Second, func() bool { return processGone(p.PID) }) {
					t.Errorf("first process %d still runs", p.PID)
				}
			}
			t.Logf("%s: %d requests ok, 0 failed, %d recycles, %d processes served",
				tt.cond, l.ok.Load(), f.pool.RecycleCounts()[tt.cond], l.distinctPIDs())
		})
	}
}

// TestUmaskAndRlimitFallback runs a shell through the shim with a umask and
// a memory limit without cgroups: the shell reports both (and exits, so the
// start fails and its output comes back in the StartError).
func TestUmaskAndRlimitFallback(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	spec := helperSpec(t, "exit")
	spec.Path = sh
	spec.Args = []string{"-c", `echo "umask=$(umask) as=$(ulimit -v) shim=${GATEHOUSE_SHIM_UMASK:-unset}"; exit 7`}
	mask := uint32(0o027)
	spec.AppPool.Umask = &mask
	spec.AppPool.Limits.Memory = 512 << 20
	f := newFixture(t, spec)
	err = f.pool.Start(ctxT(t, 10*time.Second))
	se, ok := errors.AsType[*upstream.StartError](err)
	if !ok {
		t.Fatalf("Start = %v, want the shell's exit as a StartError", err)
	}
	if want := "umask=0027 as=524288 shim=unset"; !strings.Contains(se.Output, want) {
		t.Errorf("shell output %q, want %q (umask 027, RLIMIT_AS 512 MiB in KiB, shim settings removed)", se.Output, want)
	}
	if !(len(f.log.Find("cgroup limits are not available")) > 0) {
		t.Error("the fallback to rlimits was not logged")
	}
}

// TestIdentityThrowawayUser runs the helper as a user created for the test.
func TestIdentityThrowawayUser(t *testing.T) {
	t.Parallel()
	name := throwawayUser(t)
	dir := sharedDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	copyFile(t, exe, helper, 0o755)
	id, err := ResolveIdentity(name, "", nil, false)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("runs as the user", func(t *testing.T) {
		t.Parallel()
		spec := helperSpec(t, "echo")
		spec.Path, spec.Dir = helper, dir
		spec.AppPool.Identity = id
		f := newFixture(t, spec)
		ctx := ctxT(t, 20*time.Second)
		l, err := f.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		resp, err := plainGet("http://" + l.Addr + "/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var me whoami
		if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
			t.Fatal(err)
		}
		if me.UID != int(id.UID) || me.GID != int(id.GID) || me.Cwd != dir {
			t.Errorf("helper runs as %+v, want uid %d gid %d in %s", me, id.UID, id.GID, dir)
		}
		for _, g := range me.Groups {
			if g == 0 {
				t.Errorf("helper kept Gatehouse's root group: groups %v", me.Groups)
			}
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.PID))
		if err != nil || !strings.Contains(string(st), fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d", id.UID, id.UID, id.UID, id.UID)) {
			t.Errorf("/proc/%d/status does not show uid %d: %v", l.PID, id.UID, err)
		}
	})

	t.Run("notify socket reachable", func(t *testing.T) {
		t.Parallel()
		ready := filepath.Join(dir, "ready-"+strconv.Itoa(os.Getpid()))
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		spec := helperSpec(t, "notify", "GH_FILE="+ready)
		spec.Path, spec.Dir = helper, dir
		spec.NotifyReady = true
		spec.StartupTimeout = 10 * time.Second
		spec.AppPool.Identity = id
		f := newFixture(t, spec)
		if err := f.pool.Start(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("Start with NotifyReady as %s: %v", name, err)
		}
	})

	t.Run("folder the user cannot enter", func(t *testing.T) {
		t.Parallel()
		private := t.TempDir() // 0700, owned by root
		spec := helperSpec(t, "echo")
		spec.Path, spec.Dir = helper, private
		spec.AppPool.Identity = id
		f := newFixture(t, spec)
		err := f.pool.Start(ctxT(t, 10*time.Second))
		se, ok := errors.AsType[*upstream.StartError](err)
		if !ok || se.Reason != "the app's user cannot use its folder" {
			t.Fatalf("Start = %v, want the folder refused", err)
		}
		for _, want := range []string{name, "cannot", "mode", "owner uid 0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
}

// throwawayUser creates a system user for the test and deletes it after.
func throwawayUser(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running an app as another user needs root (to create a throwaway user and switch to it); not root here")
	}
	useradd, err1 := exec.LookPath("useradd")
	userdel, err2 := exec.LookPath("userdel")
	if err1 != nil || err2 != nil {
		t.Skip("useradd/userdel not installed (package passwd)")
	}
	name := fmt.Sprintf("ghpool%d%d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	if out, err := retryLocked(useradd, "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := retryLocked(userdel, name); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	return name
}

// retryLocked runs useradd or userdel, again while another test (or another
// package's test binary) holds the lock on /etc/passwd, for up to 10s.
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

// sharedDir is a temporary folder every user may enter and read (t.TempDir
// is private to root).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gatehouse-pool-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOOMKillReported kills a ready process the way the OOM killer does
// (SIGKILL) while its cgroup's memory.events counts an oom_kill, and checks
// the exit is reported as out of memory: in the event and the log, in
// Status, and in the rapid-fail error the 503/502.5 pages show. The cgroup is
// a stand-in folder, so this runs on any host; TestCgroupLimits covers the
// kernel side where cgroup v2 is writable.
func TestOOMKillReported(t *testing.T) {
	t.Parallel()
	var evs events
	spec := helperSpec(t, "echo")
	spec.RapidFailsPerMinute = 0 // the first crash trips it, so the next Acquire shows LastExit
	spec.Events = evs.add
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	if err := f.pool.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "memory.events"), []byte("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.pool.mu.Lock()
	pr := f.pool.slots[0].cur
	pr.cg = &cgroup{dir: fake, events: filepath.Join(fake, "memory.events"), fd: -1, memory: 64 << 20}
	pid := pr.pid
	f.pool.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		_, ok := evs.find(func(e Event) bool { return e.Kind == ProcessExited && e.PID == pid })
		return ok
	}) {
		t.Fatal("no exit event")
	}
	ev, _ := evs.find(func(e Event) bool { return e.Kind == ProcessExited && e.PID == pid })
	if ev.Cause != CauseOOM || !strings.Contains(ev.Detail, "OOM killer") || !strings.Contains(ev.Detail, "64 MiB") {
		t.Errorf("exit event %+v, want cause oom with the limit", ev)
	}
	if !(len(f.log.Find("process killed by the OOM killer")) > 0) {
		t.Error("the OOM kill was not logged as such")
	}
	if st := f.pool.Status(); st.LastExit.Cause != CauseOOM {
		t.Errorf("Status().LastExit = %+v, want cause oom", st.LastExit)
	}
	_, err := f.pool.Acquire(ctx)
	rf, ok := errors.AsType[*upstream.RapidFailError](err)
	if !ok || !strings.Contains(rf.LastExit, "out of memory") {
		t.Errorf("Acquire after the OOM kill = %v, want a rapid-fail error whose last exit says out of memory", err)
	}
}

// TestCgroupLimits runs the helper in a cgroup with limits, where this host
// lets Gatehouse create cgroups (v2, else v1), and checks the limits are in
// place and that exceeding the memory limit is reported as an OOM kill.
func TestCgroupLimits(t *testing.T) {
	cg := NewCgroups(nil)
	where, err := cg.Check()
	if err != nil {
		t.Skipf("cgroup limits not available on this host: %v", err)
	}
	t.Logf("limits through %s", where)
	var evs events
	spec := helperSpec(t, "echo")
	spec.Events = evs.add
	spec.RapidFailsPerMinute = 10
	spec.AppPool.Cgroups = cg
	spec.AppPool.Limits = Limits{Memory: 192 << 20, CPUPercent: 50, Processes: 64}
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.pool.mu.Lock()
	g := f.pool.slots[0].cur.cg
	f.pool.mu.Unlock()
	dirs := map[string]string{} // limit file → folder holding it
	if len(g.v1) == 0 {
		for _, file := range []string{"memory.max", "cpu.max", "pids.max"} {
			dirs[file] = g.dir
		}
	} else {
		for _, d := range g.v1 {
			for _, file := range []string{"memory.limit_in_bytes", "cpu.cfs_quota_us", "pids.max"} {
				if _, err := os.Stat(filepath.Join(d, file)); err == nil {
					dirs[file] = d
				}
			}
		}
	}
	self, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", l.PID))
	for file, dir := range dirs {
		if err != nil || !strings.Contains(string(self), filepath.Base(dir)) {
			t.Errorf("process %d is not in %s: %s %v", l.PID, dir, self, err)
		}
		want := map[string]string{"memory.max": strconv.Itoa(192 << 20), "cpu.max": "50000 100000", "pids.max": "64",
			"memory.limit_in_bytes": strconv.Itoa(192 << 20), "cpu.cfs_quota_us": "50000"}[file]
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}
	if dirs["memory.max"] == "" && dirs["memory.limit_in_bytes"] == "" {
		t.Fatalf("no memory limit was set (cgroups %+v)", g)
	}
	pid := l.PID
	resp, err := plainGet("http://" + l.Addr + "/alloc?mb=512")
	if err == nil {
		resp.Body.Close()
	}
	l.Release()
	if !waitFor(10*time.Second, func() bool {
		_, ok := evs.find(func(e Event) bool { return e.Kind == ProcessExited && e.PID == pid })
		return ok
	}) {
		t.Fatal("the process survived allocating past memory.max")
	}
	ev, _ := evs.find(func(e Event) bool { return e.Kind == ProcessExited && e.PID == pid })
	if ev.Cause != CauseOOM || !strings.Contains(ev.Detail, "192 MiB") {
		t.Errorf("exit %+v, want cause oom at 192 MiB", ev)
	}
	for _, dir := range dirs {
		if !waitFor(5*time.Second, func() bool { _, err := os.Stat(dir); return errors.Is(err, os.ErrNotExist) }) {
			t.Errorf("cgroup %s left behind", dir)
		}
	}
}

// plainGet is http.Get without keep-alive, so no connection outlives the test.
func plainGet(url string) (*http.Response, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	return c.Get(url)
}

// TestOOMAtStartup runs a program that grows past its memory limit while it
// starts (tail -n 1 /dev/zero keeps one endless line), where this host lets
// Gatehouse create cgroups: the start fails with the OOM kill as its reason,
// and the 502.5 page for a local client says so.
func TestOOMAtStartup(t *testing.T) {
	t.Parallel()
	cg := NewCgroups(nil)
	if _, err := cg.Check(); err != nil {
		t.Skipf("cgroup limits not available on this host: %v", err)
	}
	tail, err := exec.LookPath("tail")
	if err != nil {
		t.Skip("no tail")
	}
	spec := helperSpec(t, "exit")
	spec.Path, spec.Args = tail, []string{"-n", "1", "/dev/zero"}
	spec.StartupTimeout = 30 * time.Second
	spec.AppPool.Cgroups = cg
	spec.AppPool.Limits.Memory = 64 << 20
	f := newFixture(t, spec)
	err = f.pool.Start(ctxT(t, time.Minute))
	se, ok := errors.AsType[*upstream.StartError](err)
	if !ok || !strings.Contains(se.Reason, "out of memory") || !strings.Contains(se.Reason, "64 MiB") {
		t.Fatalf("Start = %v, want a start error whose reason is the OOM kill at 64 MiB", err)
	}
	rec := httptest.NewRecorder()
	pages.StartupFailure(rec, se, pages.StartupOptions{})
	if body := rec.Body.String(); rec.Code != http.StatusBadGateway || !strings.Contains(body, "OOM killer") {
		t.Errorf("502.5 page (%d) does not name the OOM kill:\n%s", rec.Code, body)
	}
	if st := f.pool.Status(); !strings.Contains(st.LastStartError, "out of memory") {
		t.Errorf("Status().LastStartError = %q", st.LastStartError)
	}
}

// TestUmaskWithSocketActivation stacks the umask shim on the socket
// activation shim: the app gets both its umask and LISTEN_PID = its pid.
func TestUmaskWithSocketActivation(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	spec.SocketActivation = true
	mask := uint32(0o027)
	spec.AppPool.Umask = &mask
	f := newFixture(t, spec)
	l, err := f.pool.Acquire(ctxT(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r, err := get(t, l.Addr, l.Token, "")
	if err != nil || r.Env["LISTEN_PID"] != strconv.Itoa(r.PID) || r.Env["LISTEN_FDS"] != "1" {
		t.Errorf("socket activation through both shims: reply %+v, %v", r, err)
	}
	resp, err := plainGet("http://" + l.Addr + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me whoami
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || me.Umask != "0027" {
		t.Errorf("umask %q (%v), want 0027", me.Umask, err)
	}
}

// The requests condition counts exactly under concurrent load: each
// process is given Requests requests, the last of which triggers the
// recycle; the requests after it wait for the replacement, and none fails.
func TestRecycleRequestsExact(t *testing.T) {
	t.Parallel()
	const limit, total, clients = 20, 50, 8
	spec := helperSpec(t, "echo")
	spec.DrainTimeout = 5 * time.Second
	spec.AppPool.Recycling.Requests = limit
	f := newFixture(t, spec)
	ctx := ctxT(t, time.Minute)
	var mu sync.Mutex
	perPID := map[int]int{}
	var issued atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for issued.Add(1) <= total {
				lease, err := f.pool.Acquire(ctx)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				r, err := get(t, lease.Addr, lease.Token, "?hold_ms=5")
				lease.Release()
				if err != nil {
					t.Errorf("request to pid %d: %v", lease.PID, err)
					return
				}
				mu.Lock()
				perPID[r.PID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var counts []int
	for _, n := range perPID {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	if want := []int{total - 2*limit, limit, limit}; !slices.Equal(counts, want) {
		t.Errorf("requests per process %v, want %v", counts, want)
	}
	if !waitFor(30*time.Second, func() bool { return f.pool.RecycleCounts()[ConditionRequests] == 2 }) {
		t.Errorf("recycles %v, want 2 for %s", f.pool.RecycleCounts(), ConditionRequests)
	}
}

// When the replacement of a process that was given its Requests fails to
// start, the old process keeps serving past the limit.
func TestRecycleRequestsReplacementFails(t *testing.T) {
	t.Parallel()
	const limit = 3
	spec := helperSpec(t, "once", "GH_FILE="+filepath.Join(t.TempDir(), "started"))
	spec.AppPool.Recycling.Requests = limit
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	var pids []int
	for range 2 * limit {
		lease, err := f.pool.Acquire(ctx)
		if err != nil {
			t.Fatalf("Acquire after %d requests: %v", len(pids), err)
		}
		pids = append(pids, lease.PID)
		lease.Release()
	}
	for _, pid := range pids {
		if pid != pids[0] {
			t.Fatalf("requests went to %v, want all to the first process", pids)
		}
	}
	if len(f.log.Find("app failed to start")) == 0 {
		t.Errorf("no replacement was tried")
	}
}
