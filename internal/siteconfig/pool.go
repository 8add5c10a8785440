package siteconfig

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Pool is the application-pool part of an application entry: what IIS keeps
// in applicationHost.config's <applicationPools> (identity, recycling, CPU
// and memory limits) and what web.config cannot set for itself. Every field's
// zero value keeps Gatehouse's behaviour without pools: the app runs as
// Gatehouse's own user with its environment and umask, and is never recycled
// or limited.
type Pool struct {
	// User (user, default "" = Gatehouse's own user; IIS
	// processModel.userName) is the account name or numeric uid the app's
	// processes run as. Gatehouse needs root or CAP_SETUID/CAP_SETGID for
	// another user. "root" (uid 0) is refused unless AllowRoot is set.
	User string `yaml:"user" json:"user,omitempty"`
	// Group (group, default "" = the user's primary group) is the group name
	// or gid.
	Group string `yaml:"group" json:"group,omitempty"`
	// Groups (groups, default: the user's supplementary groups from the group
	// database, as initgroups does) are the supplementary groups. An empty
	// list written as [] means none.
	Groups []string `yaml:"groups" json:"groups,omitempty"`
	// AllowRoot (allowRoot, default false) permits User "root" or uid 0.
	AllowRoot bool `yaml:"allowRoot" json:"allowRoot,omitempty"`
	// CleanEnvironment (cleanEnvironment, default false) starts the app with
	// only PATH, HOME, USER, LOGNAME, LANG and TZ plus what web.config sets,
	// instead of Gatehouse's whole environment (IIS does not pass the
	// service's environment to a pool either).
	CleanEnvironment bool `yaml:"cleanEnvironment" json:"cleanEnvironment,omitempty"`
	// Umask (umask, octal such as "027", default: Gatehouse's umask) is the
	// app processes' file mode creation mask.
	Umask *Umask `yaml:"umask" json:"umask,omitempty"`
	// WorkingDirectory (workingDirectory, default: the app folder) is the
	// processes' current directory; relative paths resolve against the config
	// file's folder. web.config paths still resolve against the app folder.
	WorkingDirectory string `yaml:"workingDirectory" json:"workingDirectory,omitempty"`
	// Recycling (recycling, IIS recycling.periodicRestart) says when the app
	// is recycled (overlapped: no request is lost).
	Recycling Recycling `yaml:"recycling" json:"recycling,omitzero"`
	// Limits (limits, IIS cpu.limit and the job-object limits) caps the
	// resources of each app process and its children.
	Limits AppLimits `yaml:"limits" json:"limits,omitzero"`
}

// Recycling holds IIS's periodicRestart conditions. Each one met recycles
// every process of the app (overlapped, as on a web.config change), and the
// recycle is logged with its cause. All are off by default.
type Recycling struct {
	// Time (time, default 0 = off; IIS periodicRestart@time, whose default
	// is 1740 minutes = 29h): recycle once the oldest process has run this
	// long.
	Time time.Duration `yaml:"time" json:"time,omitempty"`
	// Schedule (schedule, IIS periodicRestart/schedule): times of day in the
	// server's local time zone, "hh:mm" or "hh:mm:ss", at which the app is
	// recycled if it runs.
	Schedule []string `yaml:"schedule" json:"schedule,omitempty"`
	// Requests (requests, default 0 = off; IIS periodicRestart@requests):
	// recycle once a process has been given this many requests.
	Requests int64 `yaml:"requests" json:"requests,omitempty"`
	// PrivateMemory (privateMemory, a size with unit such as "512MB",
	// default off; IIS periodicRestart@privateMemory, which is in KB there):
	// recycle when a process group's private memory (resident minus shared,
	// from /proc) stays above this for PrivateMemoryWindow.
	PrivateMemory Size `yaml:"privateMemory" json:"privateMemory,omitempty"`
	// PrivateMemoryWindow (privateMemoryWindow, default 30s): how long the
	// private memory must stay over PrivateMemory; memory is sampled every
	// 5s, or a quarter of the window when that is shorter.
	PrivateMemoryWindow time.Duration `yaml:"privateMemoryWindow" json:"privateMemoryWindow,omitempty"`
}

// DefaultPrivateMemoryWindow is Recycling.PrivateMemoryWindow's default.
const DefaultPrivateMemoryWindow = 30 * time.Second

// AppLimits are per-process resource limits, enforced through a cgroup v2
// per process where Gatehouse can create cgroups, else through cgroup v1
// hierarchies it can write to, and through rlimits (where noted) otherwise.
// Zero means no limit.
type AppLimits struct {
	// Memory (memory, a size such as "1GB"): cgroup memory.max (v1:
	// memory.limit_in_bytes); past it the kernel's OOM killer ends the
	// process, which Gatehouse reports as the exit cause. Without cgroups:
	// RLIMIT_AS (address space, which runtimes that reserve large ranges,
	// such as Node, may not start under).
	Memory Size `yaml:"memory" json:"memory,omitempty"`
	// CPU (cpu, percent of one CPU such as "150%"; IIS cpu.limit with
	// action Throttle): cgroup cpu.max (v1: cpu.cfs_quota_us). Not enforced
	// without cgroups.
	CPU Percent `yaml:"cpu" json:"cpu,omitempty"`
	// Processes (processes): cgroup pids.max, the tasks (processes and
	// threads) the app may have. Without cgroups: RLIMIT_NPROC, only when
	// User is set (it counts every process of that user; root ignores it).
	Processes int `yaml:"processes" json:"processes,omitempty"`
}

// Size is a byte count written with a unit ("512MB", "64KB", "1GiB"). A bare
// number is refused: IIS's privateMemory is in KB, and a copied value must
// not silently mean bytes.
type Size int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if v == "" || v == "0" {
		*s = 0
		return nil
	}
	if strings.Trim(v, "0123456789") == "" {
		return fmt.Errorf("line %d: size %q needs a unit: B, KB, MB or GB (IIS's privateMemory %s is %sKB)", n.Line, v, v, v)
	}
	b, err := config.ParseSize(v)
	if err != nil {
		return fmt.Errorf("line %d: size %w", n.Line, err)
	}
	*s = Size(b)
	return nil
}

// Percent is a CPU share in percent of one CPU: "50%" is half a CPU, "200%"
// two. A bare number is percent too.
type Percent float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSuffix(strings.TrimSpace(n.Value), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 {
		return fmt.Errorf("line %d: cpu %q: want a percentage of one CPU such as 50%% or 200%%", n.Line, n.Value)
	}
	*p = Percent(f)
	return nil
}

// Umask is a file mode creation mask, written in octal ("027", "0o027").
type Umask uint32

// UnmarshalYAML implements yaml.Unmarshaler. The scalar's text is read as
// octal whether or not it is quoted, so 027 and "027" mean the same.
func (u *Umask) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(n.Value), "0o"), "0O")
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil || m > 0o777 {
		return fmt.Errorf("line %d: umask %q: want an octal mask such as 027", n.Line, n.Value)
	}
	*u = Umask(m)
	return nil
}

// MarshalJSON writes the mask as the octal string it is written as.
func (u Umask) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", fmt.Sprintf("%04o", uint32(u)))), nil
}

// TimeOfDay is a Recycling.Schedule entry as an offset from midnight.
type TimeOfDay time.Duration

// ParseTimeOfDay parses "hh:mm" or "hh:mm:ss" (24-hour clock).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return TimeOfDay(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
				time.Duration(t.Second())*time.Second), nil
		}
	}
	return 0, fmt.Errorf("%q is not a time of day (hh:mm or hh:mm:ss)", s)
}

// ScheduleTimes returns the parsed Schedule; validate has checked it.
func (r *Recycling) ScheduleTimes() []TimeOfDay {
	var out []TimeOfDay
	for _, s := range r.Schedule {
		if t, err := ParseTimeOfDay(s); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// check returns what is wrong with one application's pool settings.
func (p *Pool) check() []string {
	var msgs []string
	if p.User != "" {
		if u, err := lookupUser(p.User); err != nil {
			msgs = append(msgs, err.Error())
		} else if u.Uid == "0" && !p.AllowRoot {
			msgs = append(msgs, fmt.Sprintf("user %q is root; set allowRoot: true to run the app as root", p.User))
		} else if u.HomeDir == "" && u.Username == p.User && p.Group == "" {
			if _, err := user.LookupId(p.User); err != nil {
				msgs = append(msgs, fmt.Sprintf("user %q has no account entry; set group", p.User))
			}
		}
	} else if p.Group != "" || p.Groups != nil {
		msgs = append(msgs, "group and groups need user")
	}
	if p.Group != "" {
		if _, err := lookupGroup(p.Group); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	for _, g := range p.Groups {
		if _, err := lookupGroup(g); err != nil {
			msgs = append(msgs, "groups: "+err.Error())
		}
	}
	r := &p.Recycling
	if r.Time < 0 || r.PrivateMemoryWindow < 0 {
		msgs = append(msgs, "recycling: durations must not be negative")
	}
	if r.Requests < 0 || r.PrivateMemory < 0 {
		msgs = append(msgs, "recycling: requests and privateMemory must not be negative")
	}
	for _, s := range r.Schedule {
		if _, err := ParseTimeOfDay(s); err != nil {
			msgs = append(msgs, "recycling.schedule: "+err.Error())
		}
	}
	if p.Limits.Memory < 0 || p.Limits.Processes < 0 {
		msgs = append(msgs, "limits: memory and processes must not be negative")
	}
	return msgs
}

// applyDefaults fills the defaults of the pool settings.
func (p *Pool) applyDefaults() {
	if p.Recycling.PrivateMemory > 0 && p.Recycling.PrivateMemoryWindow == 0 {
		p.Recycling.PrivateMemoryWindow = DefaultPrivateMemoryWindow
	}
}

// lookupUser finds an account by name or numeric uid.
func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		return &user.User{Uid: name, Gid: name, Username: name}, nil // a bare uid need not have an entry
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, ok := err.(user.UnknownUserError); ok {
			return nil, fmt.Errorf("user %q: no such account", name)
		}
		return nil, fmt.Errorf("look up user %q: %w", name, err)
	}
	return u, nil
}

// lookupGroup finds a group by name or numeric gid.
func lookupGroup(name string) (*user.Group, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		return &user.Group{Gid: name, Name: name}, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, ok := err.(user.UnknownGroupError); ok {
			return nil, fmt.Errorf("group %q: no such group", name)
		}
		return nil, fmt.Errorf("look up group %q: %w", name, err)
	}
	return g, nil
}
