package app

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// Site returns the name of the site the app is mounted in ("" for a
// single app).
func (a *App) Site() string { return a.opts.Site }

// Path returns the app's virtual path, "/" or "/api".
func (a *App) Path() string { return a.opts.Path }

// Stop stops the app's processes (gracefully, within shutdownTimeLimit) and
// keeps it down: requests get 503 (supervisor.ErrHalted) until Start. It
// returns once the processes are gone or ctx ends.
func (a *App) Stop(ctx context.Context) error {
	a.log.Info("app stopped by the operator")
	return a.pool.Halt(ctx)
}

// Start undoes Stop and starts the app's processes at once; it returns
// when they are ready, or the start error (*upstream.StartError,
// *upstream.RapidFailError), or ctx's error. It fails while app_offline.htm
// is present.
func (a *App) Start(ctx context.Context) error {
	a.pool.Resume()
	if a.offline.Load() != nil {
		return errors.New("app_offline.htm is present: remove it to start the app")
	}
	a.log.Info("app started by the operator")
	return a.pool.Start(ctx)
}

// Scale sets the number of the app's processes (web.config's
// processesPerApplication at run time; below 1 means 1), for good: a
// web.config change keeps it. Running processes stay; when the app runs,
// the added ones are started and Scale returns once they are ready.
func (a *App) Scale(ctx context.Context, n int) error {
	n = max(n, 1)
	a.processes.Store(int64(n))
	a.pool.Scale(n)
	if st := a.pool.Status().State; st == "ready" || st == "recycling" {
		return a.pool.Start(ctx)
	}
	return nil
}

// ReopenLogs starts new stdout log files for the app's processes (for
// logrotate); nothing when web.config sets no stdout log.
func (a *App) ReopenLogs() error { return a.pool.ReopenLogs() }

// StartsAtBoot reports whether the app's processes start with Gatehouse
// (startAtBoot in web.config, or Options.StartAtBoot) rather than on the
// first request.
func (a *App) StartsAtBoot() bool { return a.opts.StartAtBoot || a.Config().StartAtBoot }

// Status is a snapshot of an app for status pages.
type Status struct {
	Site string
	Path string
	Dir  string
	// State is "offline" (app_offline.htm), or the pool's state (see
	// supervisor.PoolStatus.State): "idle", "starting", "ready",
	// "recycling", "draining", "stopped" (by Stop), "backing-off", "failed".
	State string
	Pool  supervisor.PoolStatus
}

// Status returns a snapshot of the app and its processes.
func (a *App) Status() Status {
	st := Status{Site: a.opts.Site, Path: a.opts.Path, Dir: a.Config().Dir, Pool: a.pool.Status()}
	st.State = st.Pool.State
	if a.offline.Load() != nil {
		st.State = "offline"
	}
	return st
}
