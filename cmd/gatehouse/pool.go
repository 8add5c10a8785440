package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// appPool maps a site config application's pool settings onto the
// supervisor's: it resolves the user and groups (an account that vanished
// since validation is an error) and converts sizes, times and the umask.
// Running as root with no user set is allowed, as Gatehouse's own user is
// the default, but warned about on log.
func appPool(p siteconfig.Pool, cg *supervisor.Cgroups, app string, log *slog.Logger) (supervisor.AppPool, error) {
	ap := supervisor.AppPool{Cgroups: cg, WorkDir: p.WorkingDirectory}
	if p.User != "" {
		id, err := supervisor.ResolveIdentity(p.User, p.Group, p.Groups, p.AllowRoot)
		if err != nil {
			return ap, fmt.Errorf("application pool identity: %w", err)
		}
		ap.Identity = id
	} else if os.Geteuid() == 0 {
		log.Warn("app runs as root, Gatehouse's own user; set user in its application entry", "app", app)
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
