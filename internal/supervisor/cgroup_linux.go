//go:build linux

package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cgroupControllers are the cgroup v2 controllers Limits use.
var cgroupControllers = []string{"memory", "cpu", "pids"}

// Cgroups makes one cgroup v2 per app process, below Gatehouse's own cgroup,
// to enforce Limits: memory.max (with memory.swap.max 0 and
// memory.oom.group 1, so an OOM kill takes the whole app), cpu.max and
// pids.max. That works where Gatehouse may manage its own cgroup: a systemd
// unit with Delegate=yes, or root on a cgroup v2 host (a container with its
// own cgroup namespace). If Gatehouse's cgroup holds processes other than
// Gatehouse and its children, controllers cannot be enabled below it and
// Cgroups is unavailable; otherwise Gatehouse first moves itself (and its
// children, such as the keeper) into a leaf "<own>/gatehouse", as cgroup v2's
// no-internal-processes rule asks.
//
// Where cgroup v2 has no controllers but cgroup v1 hierarchies can be
// written, the v1 ones are used instead (cgroup1_linux.go).
//
// Nothing is touched until the first app with limits starts. A nil *Cgroups
// is valid and never available. Safe for concurrent use.
type Cgroups struct {
	log *slog.Logger
	seq atomic.Uint64

	mu         sync.Mutex // protects everything below
	prepared   bool
	base       string            // cgroup v2: folder the app cgroups are made in
	v1         map[string]string // cgroup v1 (when v2 is unusable): that folder per controller
	why        error             // why cgroups cannot be used; nil when base or v1 is usable
	controlled []string          // cgroup v2: controllers enabled in base
	warned     bool
}

// NewCgroups returns a Cgroups that reports to log (nil: discard). It does
// not look at the system yet.
func NewCgroups(log *slog.Logger) *Cgroups {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cgroups{log: log}
}

// Check prepares Gatehouse's cgroup (once) and says where the apps' cgroups
// are made ("cgroup v2 at DIR" or "cgroup v1: memory at DIR, ..."), or why
// neither cgroup v2 nor cgroup v1 limits are available here.
func (c *Cgroups) Check() (string, error) {
	if c == nil {
		return "", errors.New("no cgroup manager")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.prepared {
		c.prepared = true
		c.base, c.controlled, c.why = prepareCgroups()
		if c.why == nil {
			c.log.Info("cgroup v2 limits available", "cgroup", c.base, "controllers", strings.Join(c.controlled, " "))
		} else if v1, err := prepareCgroupsV1(); err == nil {
			c.log.Info("cgroup v2 is not usable; limits use cgroup v1", "why_not_v2", c.why, "v1", describeV1(v1))
			c.v1, c.why = v1, nil
		} else {
			c.why = fmt.Errorf("%w; cgroup v1: %w", c.why, err)
		}
	}
	if c.v1 != nil {
		return "cgroup v1: " + describeV1(c.v1), nil
	}
	if c.why != nil {
		return "", c.why
	}
	return "cgroup v2 at " + c.base, nil
}

func describeV1(v1 map[string]string) string {
	var parts []string
	for _, ctl := range cgroupControllers {
		if dir, ok := v1[ctl]; ok {
			parts = append(parts, ctl+" at "+dir)
		}
	}
	return strings.Join(parts, ", ")
}

// warnFallback logs once that limits fall back to rlimits.
func (c *Cgroups) warnFallback(log *slog.Logger, why error) {
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.warned {
			return
		}
		c.warned = true
		log = c.log
	}
	log.Warn("cgroup limits are not available; memory limits apply as RLIMIT_AS (address space), "+
		"process limits as RLIMIT_NPROC for apps with their own user, cpu limits are not enforced",
		"why", why)
}

// prepareCgroups finds Gatehouse's cgroup v2 folder and enables the
// controllers for children in it.
func prepareCgroups() (string, []string, error) {
	own, err := ownCgroupDir()
	if err != nil {
		return "", nil, err
	}
	have, err := readWords(filepath.Join(own, "cgroup.controllers"))
	if err != nil {
		return "", nil, fmt.Errorf("read controllers of %s: %w", own, err)
	}
	var want []string
	for _, ctl := range cgroupControllers {
		if slices.Contains(have, ctl) {
			want = append(want, ctl)
		}
	}
	if len(want) == 0 {
		return "", nil, fmt.Errorf("cgroup %s has none of the controllers %s (a cgroup v1 or hybrid host, or no delegation)",
			own, strings.Join(cgroupControllers, ", "))
	}
	if err := enableControllers(own, want); err != nil {
		if !errors.Is(err, syscall.EBUSY) {
			return "", nil, fmt.Errorf("enable controllers in %s: %w", own, err)
		}
		// No internal processes: move Gatehouse into a leaf first.
		if err := moveSelfToLeaf(own); err != nil {
			return "", nil, err
		}
		if err := enableControllers(own, want); err != nil {
			return "", nil, fmt.Errorf("enable controllers in %s: %w", own, err)
		}
	}
	removeStale(own)
	return own, want, nil
}

// removeStale removes the app cgroups in dir that a Gatehouse which is gone
// left behind (the pid in "app-<name>-<pid>-<seq>" no longer exists).
// rmdir only removes empty cgroups, so a live app is never touched.
func removeStale(dir string) {
	stale, err := filepath.Glob(filepath.Join(dir, "app-*"))
	if err != nil {
		return
	}
	for _, d := range stale {
		f := strings.Split(filepath.Base(d), "-")
		if len(f) < 4 {
			continue
		}
		if pid, err := strconv.Atoi(f[len(f)-2]); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = syscall.Rmdir(d)
		}
	}
}

// ownCgroupDir returns the folder of this process's cgroup v2.
func ownCgroupDir() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	path, ok := unifiedPath(string(b))
	if !ok {
		return "", errors.New("no cgroup v2 entry in /proc/self/cgroup")
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	mount, root, ok := cgroup2Mount(string(mi))
	if !ok {
		return "", errors.New("no cgroup2 file system mounted")
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("own cgroup %s is outside the mounted cgroup2 root %s", path, root)
	}
	return filepath.Join(mount, rel), nil
}

// unifiedPath returns the path of the "0::PATH" line of /proc/PID/cgroup.
func unifiedPath(s string) (string, bool) {
	for line := range strings.SplitSeq(s, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, true
		}
	}
	return "", false
}

// cgroup2Mount returns the mount point and root of the first cgroup2 mount
// in a /proc/self/mountinfo text.
func cgroup2Mount(s string) (mount, root string, ok bool) {
	for line := range strings.SplitSeq(s, "\n") {
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		if fs := strings.Fields(post); len(fs) == 0 || fs[0] != "cgroup2" {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 {
			continue
		}
		return unescapeMount(f[4]), unescapeMount(f[3]), true
	}
	return "", "", false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readWords(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// enableControllers writes "+ctl" to dir/cgroup.subtree_control for each
// controller not yet enabled.
func enableControllers(dir string, ctls []string) error {
	on, err := readWords(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	var add []string
	for _, c := range ctls {
		if !slices.Contains(on, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " "))
}

// moveSelfToLeaf moves this process and its children out of dir into
// dir/gatehouse. It refuses if dir holds any other process.
func moveSelfToLeaf(dir string) error {
	pids, err := readWords(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("read %s/cgroup.procs: %w", dir, err)
	}
	me := os.Getpid()
	for _, s := range pids {
		pid, _ := strconv.Atoi(s)
		if pid != me && procStatPPid(pid) != me {
			return fmt.Errorf("cgroup %s also holds process %d, so controllers cannot be enabled below it; "+
				"run Gatehouse in a cgroup of its own (systemd: Delegate=yes)", dir, pid)
		}
	}
	leaf := filepath.Join(dir, "gatehouse")
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", leaf, err)
	}
	for _, s := range pids {
		if err := writeFile(filepath.Join(leaf, "cgroup.procs"), s); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("move process %s to %s: %w", s, leaf, err)
		}
	}
	return nil
}

// procStatPPid returns the parent pid of pid, or -1.
func procStatPPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return n
}

func writeFile(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cgroup is one app process's cgroup (v2), or its cgroups in the v1
// hierarchies.
type cgroup struct {
	dir    string   // v2: the cgroup
	v1     []string // v1: the cgroup in each hierarchy with a limit
	events string   // the file with the oom_kill count: memory.events (v2), memory.oom_control (v1)
	fd     int      // v2: open until the process started (CLONE_INTO_CGROUP), then -1
	memory int64
}

// create makes the cgroup of one process of app name with lim. It returns
// nil, nil when cgroups are not available (after warning once).
func (c *Cgroups) create(name string, lim Limits, log *slog.Logger) (*cgroup, error) {
	if _, err := c.Check(); err != nil {
		c.warnFallback(log, err)
		return nil, nil
	}
	c.mu.Lock()
	base, ctls, v1 := c.base, c.controlled, c.v1
	c.mu.Unlock()
	leaf := fmt.Sprintf("app-%s-%d-%d", cgroupName(name), os.Getpid(), c.seq.Add(1))
	if v1 != nil {
		return createV1(v1, leaf, lim, log)
	}
	dir := filepath.Join(base, leaf)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	g := &cgroup{dir: dir, events: filepath.Join(dir, "memory.events"), fd: -1, memory: lim.Memory}
	if err := g.apply(lim, ctls, log); err != nil {
		g.remove()
		return nil, err
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		g.remove()
		return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	g.fd = fd
	return g, nil
}

// apply writes the limits; a limit whose controller is not delegated is
// logged and skipped.
func (g *cgroup) apply(lim Limits, ctls []string, log *slog.Logger) error {
	type setting struct{ ctl, file, value string }
	var sets []setting
	if lim.Memory > 0 {
		sets = append(sets, setting{"memory", "memory.max", strconv.FormatInt(lim.Memory, 10)},
			setting{"memory", "memory.swap.max", "0"}, setting{"memory", "memory.oom.group", "1"})
	}
	if lim.CPUPercent > 0 {
		sets = append(sets, setting{"cpu", "cpu.max", cpuMax(lim.CPUPercent)})
	}
	if lim.Processes > 0 {
		sets = append(sets, setting{"pids", "pids.max", strconv.Itoa(lim.Processes)})
	}
	for _, s := range sets {
		if !slices.Contains(ctls, s.ctl) {
			log.Warn("limit not enforced: the controller is not delegated to Gatehouse", "controller", s.ctl, "file", s.file)
			continue
		}
		err := writeFile(filepath.Join(g.dir, s.file), s.value)
		if err != nil && s.file == "memory.swap.max" && errors.Is(err, os.ErrNotExist) {
			continue // no swap accounting in this kernel
		}
		if err != nil {
			return fmt.Errorf("set %s to %s in %s: %w", s.file, s.value, g.dir, err)
		}
	}
	return nil
}

// cpuMax returns cpu.max's "quota period" for percent of one CPU, with the
// kernel's default period of 100 ms.
func cpuMax(percent float64) string {
	const period = 100000
	quota := max(int64(percent*period/100), 1000) // the kernel's minimum quota is 1 ms
	return fmt.Sprintf("%d %d", quota, period)
}

// cgroupName keeps letters, digits, '.', '-' and '_' of an app name.
func cgroupName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return strings.Trim(string(b), "_")
}

// started closes the folder fd once the child is in the cgroup. nil-safe.
func (g *cgroup) started() {
	if g != nil && g.fd >= 0 {
		syscall.Close(g.fd)
		g.fd = -1
	}
}

// oomKills returns the oom_kill count of memory.events (v2) or
// memory.oom_control (v1); 0 if unreadable or without a memory limit.
// nil-safe.
func (g *cgroup) oomKills() int64 {
	if g == nil || g.events == "" {
		return 0
	}
	b, err := os.ReadFile(g.events)
	if err != nil {
		return 0
	}
	return parseOOMKills(string(b))
}

// parseOOMKills reads "oom_kill N" from a memory.events text.
func parseOOMKills(s string) int64 {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// oomCause describes an OOM kill in the cgroup, or "" if there was none.
func (g *cgroup) oomCause() string {
	if n := g.oomKills(); n > 0 {
		return fmt.Sprintf("out of memory: the kernel's OOM killer ended it at the memory limit of %s (%s oom_kill %d)",
			formatBytes(g.memory), filepath.Base(g.events), n)
	}
	return ""
}

// remove kills whatever is left in the cgroup (cgroup.kill) and removes it,
// retrying while the kernel still counts exiting tasks (at most a second).
// nil-safe; errors are ignored, since the folder is only bookkeeping.
func (g *cgroup) remove() {
	if g == nil {
		return
	}
	g.started()
	if len(g.v1) > 0 {
		g.removeV1()
		return
	}
	_ = writeFile(filepath.Join(g.dir, "cgroup.kill"), "1")
	rmdirRetry(g.dir)
}

// rmdirRetry removes a cgroup folder, retrying while the kernel still counts
// exiting tasks in it (at most a second).
func rmdirRetry(dir string) {
	deadline := time.Now().Add(time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) || time.Now().After(deadline) || !errors.Is(err, syscall.EBUSY) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
