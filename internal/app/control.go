package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// ErrStoppedByOperator is what requests to an app stopped with Stop get
// (mapped to 503 like a stopping app): the app stays down until Start.
var ErrStoppedByOperator = fmt.Errorf("app stopped by the operator: %w", upstream.ErrShuttingDown)

// Site returns the name of the site the app is mounted in ("" for a
// single app).
func (a *App) Site() string { return a.opts.Site }

// Path returns the app's virtual path, "/" or "/api".
func (a *App) Path() string { return a.opts.Path }

// Stop stops the app's processes (gracefully, within shutdownTimeLimit) and
// keeps it down: requests get 503 until Start. It returns once the
// processes are gone or ctx ends.
func (a *App) Stop(ctx context.Context) error {
	a.stopped.Store(true)
	a.log.Info("app stopped by the operator")
	return a.pool.Stop(ctx)
}

// Start undoes Stop and starts the app's processes at once; it returns
// when they are ready, or the start error (*upstream.StartError,
// *upstream.RapidFailError), or ctx's error. It fails while app_offline.htm
// is present.
func (a *App) Start(ctx context.Context) error {
	a.stopped.Store(false)
	if a.offline.Load() != nil {
		return errors.New("app_offline.htm is present: remove it to start the app")
	}
	a.log.Info("app started by the operator")
	return a.pool.Start(ctx)
}

// StartsAtBoot reports whether the app's processes start with Gatehouse
// (startAtBoot in web.config, or Options.StartAtBoot) rather than on the
// first request.
func (a *App) StartsAtBoot() bool { return a.opts.StartAtBoot || a.Config().StartAtBoot }

// Status is a snapshot of an app for status pages.
type Status struct {
	Site string
	Path string
	Dir  string
	// State is "offline" (app_offline.htm), "stopped" (by Stop, or nothing
	// runs), or the pool's state: "starting", "ready", "draining",
	// "backing-off", "failed".
	State string
	Pool  supervisor.PoolStatus
}

// Status returns a snapshot of the app and its processes.
func (a *App) Status() Status {
	st := Status{Site: a.opts.Site, Path: a.opts.Path, Dir: a.Config().Dir, Pool: a.pool.Status()}
	st.State = st.Pool.State
	switch {
	case a.offline.Load() != nil:
		st.State = "offline"
	case a.stopped.Load() && st.State != "draining":
		st.State = "stopped"
	}
	return st
}
