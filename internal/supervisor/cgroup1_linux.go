//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// cgroup v1 is the fallback where cgroup v2 has no controllers (v1 or
// hybrid hosts, such as older distributions and many container hosts): each
// controller is its own hierarchy, mounted at /sys/fs/cgroup/<name>, and
// Gatehouse makes the app's cgroup below its own cgroup in each of
// memory, cpu and pids that it may write to. v1 has no CLONE_INTO_CGROUP,
// so the re-exec shim moves itself into them before it execs the app (see
// shimCgroupsEnv); every process the app starts is in them too.

// shimCgroupsEnv lists cgroup.procs files, separated by ':', that the shim
// writes its pid to before it execs the app (cgroup v1).
const shimCgroupsEnv = "GATEHOUSE_SHIM_CGROUPS"

// prepareCgroupsV1 finds, for each of cgroupControllers mounted as a v1
// hierarchy, this process's cgroup folder in it, and checks it may create
// cgroups there. It returns them by controller.
func prepareCgroupsV1() (map[string]string, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	mounts := cgroup1Mounts(string(mi))
	paths := cgroup1Paths(string(self))
	bases := map[string]string{}
	var why []string
	for _, ctl := range cgroupControllers {
		m, ok := mounts[ctl]
		if !ok {
			continue
		}
		rel, err := filepath.Rel(m.root, paths[ctl])
		if err != nil || strings.HasPrefix(rel, "..") {
			why = append(why, fmt.Sprintf("%s: own cgroup %q is outside the mounted root %q", ctl, paths[ctl], m.root))
			continue
		}
		dir := filepath.Join(m.mount, rel)
		probe := filepath.Join(dir, fmt.Sprintf("gatehouse-probe-%d", os.Getpid()))
		if err := os.Mkdir(probe, 0o755); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", ctl, err))
			continue
		}
		_ = syscall.Rmdir(probe)
		removeStale(dir)
		bases[ctl] = dir
	}
	if len(bases) == 0 {
		if len(why) == 0 {
			return nil, errors.New("no cgroup v1 memory, cpu or pids hierarchy is mounted")
		}
		return nil, fmt.Errorf("cannot create cgroup v1 groups: %s", strings.Join(why, "; "))
	}
	return bases, nil
}

type mountPoint struct{ mount, root string }

// cgroup1Mounts returns the v1 hierarchies of a mountinfo text by
// controller name (from the super options, "rw,memory").
func cgroup1Mounts(s string) map[string]mountPoint {
	out := map[string]mountPoint{}
	for line := range strings.SplitSeq(s, "\n") {
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		fs := strings.Fields(post)
		if len(fs) < 3 || fs[0] != "cgroup" {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 {
			continue
		}
		for opt := range strings.SplitSeq(fs[2], ",") {
			if _, seen := out[opt]; !seen {
				out[opt] = mountPoint{mount: unescapeMount(f[4]), root: unescapeMount(f[3])}
			}
		}
	}
	return out
}

// cgroup1Paths returns the v1 entries of /proc/PID/cgroup by controller
// ("4:memory:/a" → memory: /a; "2:cpu,cpuacct:/b" → cpu and cpuacct: /b).
func cgroup1Paths(s string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue
		}
		for ctl := range strings.SplitSeq(f[1], ",") {
			out[ctl] = f[2]
		}
	}
	return out
}

// createV1 makes the cgroups of one process in the v1 hierarchies bases.
func createV1(bases map[string]string, leaf string, lim Limits, log *slog.Logger) (*cgroup, error) {
	g := &cgroup{fd: -1, memory: lim.Memory}
	type setting struct{ ctl, file, value string }
	var sets []setting
	if lim.Memory > 0 {
		m := strconv.FormatInt(lim.Memory, 10)
		sets = append(sets, setting{"memory", "memory.limit_in_bytes", m}, setting{"memory", "memory.memsw.limit_in_bytes", m})
	}
	if lim.CPUPercent > 0 {
		quota, period, _ := strings.Cut(cpuMax(lim.CPUPercent), " ")
		sets = append(sets, setting{"cpu", "cpu.cfs_period_us", period}, setting{"cpu", "cpu.cfs_quota_us", quota})
	}
	if lim.Processes > 0 {
		sets = append(sets, setting{"pids", "pids.max", strconv.Itoa(lim.Processes)})
	}
	dirs := map[string]string{}
	for _, s := range sets {
		base, ok := bases[s.ctl]
		if !ok {
			log.Warn("limit not enforced: no writable cgroup v1 hierarchy for the controller", "controller", s.ctl, "file", s.file)
			continue
		}
		dir, made := dirs[s.ctl]
		if !made {
			dir = filepath.Join(base, leaf)
			if err := os.Mkdir(dir, 0o755); err != nil {
				g.remove()
				return nil, fmt.Errorf("create cgroup: %w", err)
			}
			dirs[s.ctl] = dir
			g.v1 = append(g.v1, dir)
			if s.ctl == "memory" {
				g.events = filepath.Join(dir, "memory.oom_control")
			}
		}
		err := writeFile(filepath.Join(dir, s.file), s.value)
		if err != nil && s.file == "memory.memsw.limit_in_bytes" && errors.Is(err, os.ErrNotExist) {
			continue // no swap accounting
		}
		if err != nil {
			g.remove()
			return nil, fmt.Errorf("set %s to %s in %s: %w", s.file, s.value, dir, err)
		}
	}
	if len(g.v1) == 0 {
		return nil, nil // no limit has a hierarchy: the rlimit fallback applies
	}
	return g, nil
}

// joinV1 returns the shim's environment entry that moves the app into g's
// v1 cgroups, after making their cgroup.procs writable by id (the shim runs
// as the app's user). "" for a v2 cgroup.
func (g *cgroup) joinV1(id *Identity) (string, error) {
	if g == nil || len(g.v1) == 0 {
		return "", nil
	}
	var procs []string
	for _, dir := range g.v1 {
		f := filepath.Join(dir, "cgroup.procs")
		if id != nil && id.UID != 0 {
			if err := os.Chown(f, int(id.UID), int(id.GID)); err != nil {
				return "", fmt.Errorf("hand %s to the app's user: %w", f, err)
			}
		}
		procs = append(procs, f)
	}
	return shimCgroupsEnv + "=" + strings.Join(procs, ":"), nil
}

// joinShimCgroups moves this process (the shim) into the cgroups listed in
// shimCgroupsEnv.
func joinShimCgroups(v string) error {
	pid := strconv.Itoa(os.Getpid())
	for f := range strings.SplitSeq(v, ":") {
		if err := writeFile(f, pid); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(f), err)
		}
	}
	return nil
}

// removeV1 kills what is left in g's v1 cgroups and removes them.
func (g *cgroup) removeV1() {
	for _, dir := range g.v1 {
		if pids, err := readWords(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, s := range pids {
				if pid, err := strconv.Atoi(s); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		rmdirRetry(dir)
	}
}
