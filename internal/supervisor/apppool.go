package supervisor

import (
	"fmt"
	"time"
)

// AppPool holds what IIS keeps per application pool: who the processes run
// as, their umask and working folder, their resource limits and when the
// app is recycled. The zero value runs the app as Gatehouse, with
// Gatehouse's umask, in Spec.Dir, unlimited and never recycled.
type AppPool struct {
	// Identity, if set, is the account the processes run as (needs root or
	// CAP_SETUID/CAP_SETGID). At each start the working folder and the
	// program are checked for access by that account; a failure is a start
	// error naming the path, its mode and owner. nil = Gatehouse's own user.
	Identity *Identity
	// Umask, if set, is the processes' file mode creation mask; nil keeps
	// Gatehouse's. Applied by the re-exec shim (see ShimMain).
	Umask *uint32
	// WorkDir is the processes' current folder; "" means Spec.Dir. Relative
	// paths in processPath and arguments still resolve against Spec.Dir.
	WorkDir string
	// Limits caps each process (and its children).
	Limits Limits
	// Recycling says when the pool recycles itself.
	Recycling RecyclePolicy
	// Cgroups is where Limits are enforced with cgroup v2 (or v1 where v2
	// has no controllers). nil, or a Cgroups that found neither usable, falls
	// back to rlimits (see Limits). The Pool does not own it.
	Cgroups *Cgroups
}

// Limits are per-process resource limits. Zero means no limit.
type Limits struct {
	// Memory is memory.max (v1: memory.limit_in_bytes) in bytes; the OOM
	// killer ends the process past it and the exit is reported as out of
	// memory. Without cgroups it becomes RLIMIT_AS (address space).
	Memory int64
	// CPUPercent is cpu.max (v1: cpu.cfs_quota_us) as a percentage of one
	// CPU (150 = one and a half). Without cgroups it is not enforced.
	CPUPercent float64
	// Processes is pids.max. Without cgroups it becomes RLIMIT_NPROC when the
	// pool has an Identity other than root (the limit counts all processes of
	// that user, and root ignores it).
	Processes int
}

func (l Limits) any() bool { return l.Memory > 0 || l.CPUPercent > 0 || l.Processes > 0 }

// RecyclePolicy is IIS's recycling/periodicRestart: conditions that make the
// pool recycle all its processes, overlapped as Recycle does. The zero value
// never recycles.
type RecyclePolicy struct {
	// Time recycles once a process has run this long (IIS time; 0 = off).
	Time time.Duration
	// Schedule recycles at these times of day, as offsets from local
	// midnight (IIS schedule), if a process runs.
	Schedule []time.Duration
	// Requests recycles once a process has been given this many requests
	// (IIS requests; 0 = off), exactly: the process takes no request past
	// the Nth until a failed replacement lets it serve on.
	Requests int
	// PrivateMemory recycles once a process group's private memory (resident
	// minus shared pages, from /proc/PID/statm) has stayed above this many
	// bytes for PrivateMemoryWindow (IIS privateMemory; 0 = off).
	PrivateMemory int64
	// PrivateMemoryWindow is how long the memory must stay over the limit;
	// 0 recycles on the first sample over it.
	PrivateMemoryWindow time.Duration
}

func (r RecyclePolicy) active() bool {
	return r.Time > 0 || len(r.Schedule) > 0 || r.Requests > 0 || r.PrivateMemory > 0
}

// Recycling conditions, the keys of Pool.RecycleCounts and
// Event.Condition (IIS's names).
const (
	ConditionTime          = "time"
	ConditionSchedule      = "schedule"
	ConditionRequests      = "requests"
	ConditionPrivateMemory = "privateMemory"
)

// procSnap is what the policy needs to know of one serving process.
type procSnap struct {
	pid       int
	started   time.Time
	requests  int
	memory    int64     // private bytes at the last sample; -1 if unknown
	overSince time.Time // first sample over PrivateMemory in the current run; zero if not over
}

// due returns the first condition that is met, as its key, the pid that met
// it (0 for the schedule) and a sentence for the log, or "" if none is. last
// is the previous check, so a scheduled time in (last, now] is due.
func (r RecyclePolicy) due(now, last time.Time, procs []procSnap) (cond string, pid int, why string) {
	if len(procs) == 0 {
		return "", 0, ""
	}
	for _, pr := range procs {
		if r.Time > 0 && now.Sub(pr.started) >= r.Time {
			return ConditionTime, pr.pid, fmt.Sprintf("periodicRestart time: process %d has run %s (time %s)",
				pr.pid, now.Sub(pr.started).Round(time.Millisecond), r.Time)
		}
	}
	if at, ok := scheduledBetween(r.Schedule, last, now); ok {
		return ConditionSchedule, 0, fmt.Sprintf("periodicRestart schedule: %s", at.Format("15:04:05"))
	}
	for _, pr := range procs {
		if r.Requests > 0 && pr.requests >= r.Requests {
			return ConditionRequests, pr.pid, fmt.Sprintf("periodicRestart requests: process %d was given %d requests (requests %d)",
				pr.pid, pr.requests, r.Requests)
		}
	}
	for _, pr := range procs {
		if r.PrivateMemory > 0 && !pr.overSince.IsZero() && now.Sub(pr.overSince) >= r.PrivateMemoryWindow {
			return ConditionPrivateMemory, pr.pid, fmt.Sprintf("periodicRestart privateMemory: process group %d has used %s of private memory for %s (privateMemory %s)",
				pr.pid, formatBytes(pr.memory), now.Sub(pr.overSince).Round(time.Millisecond), formatBytes(r.PrivateMemory))
		}
	}
	return "", 0, ""
}

// scheduledBetween returns the first time of day in sched that falls in
// (after, upTo], in upTo's location.
func scheduledBetween(sched []time.Duration, after, upTo time.Time) (time.Time, bool) {
	if len(sched) == 0 || !upTo.After(after) {
		return time.Time{}, false
	}
	var best time.Time
	// Each calendar day from after's to upTo's (a check gap is short, so
	// this is one or two days).
	y, m, d := after.In(upTo.Location()).Date()
	for day := time.Date(y, m, d, 0, 0, 0, 0, upTo.Location()); !day.After(upTo); day = day.AddDate(0, 0, 1) {
		for _, off := range sched {
			h, mi, s := int(off/time.Hour), int(off%time.Hour/time.Minute), int(off%time.Minute/time.Second)
			t := time.Date(day.Year(), day.Month(), day.Day(), h, mi, s, 0, upTo.Location())
			if t.After(after) && !t.After(upTo) && (best.IsZero() || t.Before(best)) {
				best = t
			}
		}
	}
	return best, !best.IsZero()
}

// memoryInterval is how often the private memory is sampled: every 5s, or a
// quarter of the window when that is shorter, but not more often than tick.
func (r RecyclePolicy) memoryInterval(tick time.Duration) time.Duration {
	return max(min(5*time.Second, r.PrivateMemoryWindow/4), tick)
}

// formatBytes writes n in the largest whole binary unit: "64 MiB", "1.5 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.4g %ciB", float64(n)/float64(div), "KMGT"[exp])
}
