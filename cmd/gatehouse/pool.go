package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// appPool maps a site config application's pool settings onto the
// supervisor's: it resolves the user and groups (an account that vanished
// since validation is an error) and converts sizes, times and the umask.
// An app that sets no user runs as Gatehouse's own user; when that is root,
// it is refused unless allowRoot (the --allow-root flag) or the
// application's allowRoot says so.
func appPool(p siteconfig.Pool, cg *supervisor.Cgroups, app string, allowRoot bool) (supervisor.AppPool, error) {
	ap := supervisor.AppPool{Cgroups: cg, WorkDir: p.WorkingDirectory}
	if p.User != "" {
		id, err := supervisor.ResolveIdentity(p.User, p.Group, p.Groups, p.AllowRoot)
		if err != nil {
			return ap, fmt.Errorf("application pool identity: %w", err)
		}
		ap.Identity = id
	} else if err := checkImplicitRoot(allowRoot || p.AllowRoot, "app "+app); err != nil {
		return ap, err
	}
	if p.Umask != nil {
		u := uint32(*p.Umask)
		ap.Umask = &u
	}
	ap.Limits = supervisor.Limits{
		Memory:     int64(p.Limits.Memory),
		CPUPercent: float64(p.Limits.CPU),
		Processes:  p.Limits.Processes,
	}
	r := p.Recycling
	ap.Recycling = supervisor.RecyclePolicy{
		Time:                r.Time,
		Requests:            int(r.Requests),
		PrivateMemory:       int64(r.PrivateMemory),
		PrivateMemoryWindow: r.PrivateMemoryWindow,
	}
	for _, t := range r.ScheduleTimes() {
		ap.Recycling.Schedule = append(ap.Recycling.Schedule, time.Duration(t))
	}
	return ap, nil
}

// checkImplicitRoot refuses to run an app as root by default: it returns
// an error when Gatehouse runs as root and allowed is false. IIS never runs
// an application pool as SYSTEM unless told to.
func checkImplicitRoot(allowed bool, app string) error {
	if allowed || os.Geteuid() != 0 {
		return nil
	}
	return fmt.Errorf("%s would run as root, Gatehouse's own user: set user in its application entry, "+
		"or allowRoot: true (--allow-root for serve DIR and run)", app)
}

// describePool is the one-line summary "gatehouse check" prints of an
// application's pool settings ("" when none is set). It resolves the user
// as a start would.
func describePool(p siteconfig.Pool) (string, error) {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if p.User != "" {
		id, err := supervisor.ResolveIdentity(p.User, p.Group, p.Groups, p.AllowRoot)
		if err != nil {
			return "", err
		}
		add("user %s groups %v", id, id.Groups)
	}
	if p.CleanEnvironment {
		add("clean environment")
	}
	if p.Umask != nil {
		add("umask %04o", uint32(*p.Umask))
	}
	if p.WorkingDirectory != "" {
		add("working directory %s", p.WorkingDirectory)
	}
	r := p.Recycling
	if r.Time > 0 {
		add("recycle after %s", r.Time)
	}
	if len(r.Schedule) > 0 {
		add("recycle at %s", strings.Join(r.Schedule, ", "))
	}
	if r.Requests > 0 {
		add("recycle after %d requests", r.Requests)
	}
	if r.PrivateMemory > 0 {
		add("recycle over %d bytes of private memory for %s", r.PrivateMemory, r.PrivateMemoryWindow)
	}
	if l := p.Limits; l.Memory > 0 || l.CPU > 0 || l.Processes > 0 {
		add("limits memory %d bytes, cpu %g%%, processes %d (0 = none; cgroup v2, else rlimits)", l.Memory, float64(l.CPU), l.Processes)
	}
	return strings.Join(parts, "; "), nil
}
