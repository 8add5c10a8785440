package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// controller is what the admin endpoint controls: the front door and the
// apps open in it.
type controller struct {
	srv     *frontend.Server
	apps    *appSet
	log     *slog.Logger
	ring    *logRing // the latest log lines about each app; nil: none kept
	started time.Time
	// reload re-reads the configuration; an error wrapping
	// admin.ErrInvalidConfig means it was rejected.
	reload func(ctx context.Context) error
	// upgrade hands over to a new binary (nil: not possible).
	upgrade *upgrader
}

func (c *controller) Upgrade(ctx context.Context) error {
	if c.upgrade == nil {
		return errors.New("upgrade is not possible: the path of the gatehouse executable is unknown")
	}
	_, err := c.upgrade.Upgrade(ctx)
	return err
}

var _ admin.Controller = (*controller)(nil)

// appName is the name control commands take: "SITE/PATH", "default/".
func appName(site, path string) string { return site + path }

func (c *controller) Status() admin.Status {
	st := admin.Status{Time: time.Now(), PID: os.Getpid(), Version: version(), Started: c.started}
	for _, b := range c.srv.Bindings() {
		st.Listeners = append(st.Listeners, admin.Listener{Site: b.Site, Binding: b.Name,
			Scheme: b.Scheme, Host: b.Host, Address: b.Addr})
	}
	now := time.Now()
	for _, a := range c.apps.list() {
		as := a.Status()
		ps := as.Pool
		out := admin.App{Name: appName(as.Site, as.Path), Site: as.Site, Path: as.Path, Dir: as.Dir,
			State: as.State, Starts: ps.Starts, Restarts: ps.Crashes,
			LastStartError: ps.LastStartError, RetryAfterSeconds: ps.RetryAfter.Seconds(),
			Processes: []admin.Process{}}
		if !ps.LastStartErrorAt.IsZero() {
			t := ps.LastStartErrorAt
			out.LastStartErrorAt = &t
		}
		if e := ps.LastExit; e.PID != 0 {
			out.LastExit = &admin.Exit{PID: e.PID, Code: e.Code, Signal: e.Signal, Cause: string(e.Cause), Time: e.Time}
		}
		out.Reason = stateReason(out)
		for _, p := range ps.Processes {
			ap := admin.Process{Slot: p.Slot, PID: p.PID, Port: p.Port, State: p.State, Started: p.Started,
				Requests: p.Requests, InFlight: p.Outstanding}
			if !p.Started.IsZero() {
				ap.UptimeSeconds = now.Sub(p.Started).Seconds()
			}
			ap.CPUSeconds, ap.MemoryBytes = procUsage(p.PID)
			out.Processes = append(out.Processes, ap)
		}
		st.Apps = append(st.Apps, out)
	}
	slices.SortFunc(st.Apps, func(a, b admin.App) int { return cmp.Compare(a.Name, b.Name) })
	sites, hs := c.apps.dirs.health()
	for i, h := range hs {
		d := admin.Directory{Site: sites[i], URL: h.URL, Up: h.Up, LastError: h.LastError,
			Lookups: h.Lookups, CacheHits: h.CacheHits, Failures: h.Failures}
		if !h.LastOK.IsZero() {
			t := h.LastOK
			d.LastOK = &t
		}
		st.Directories = append(st.Directories, d)
	}
	return st
}

// stateReason says in one sentence why app is in its state.
func stateReason(a admin.App) string {
	switch a.State {
	case "idle":
		return "no process runs; the next request starts one"
	case "stopped":
		return "stopped by the operator; gatehouse start " + a.Name + " starts it"
	case "offline":
		return "app_offline.htm is present in " + a.Dir
	case "recycling":
		return "new processes are starting; the old ones serve until they are ready"
	case "draining":
		return "processes are stopping"
	case "failed":
		return "the last start failed: " + firstLine(a.LastStartError)
	case "backing-off":
		why := "the app exited more often than rapidFailsPerMinute allows; starts resume when the minute ends"
		if e := a.LastExit; e != nil {
			why += "; last exit: " + exitText(e)
		}
		return why
	}
	return ""
}

// exitText describes how a process ended: "pid 42 code 1 (crash)".
func exitText(e *admin.Exit) string {
	how := fmt.Sprintf("code %d", e.Code)
	if e.Signal != "" {
		how = e.Signal
	}
	return fmt.Sprintf("pid %d %s (%s)", e.PID, how, e.Cause)
}

func (c *controller) Recycle(ctx context.Context, name string) error {
	if name == "" {
		return c.apps.recycle(ctx)
	}
	a, err := c.apps.find(name)
	if err != nil {
		return err
	}
	if err := a.Recycle(ctx); err != nil {
		return fmt.Errorf("recycle %s: %w", name, err)
	}
	return nil
}

func (c *controller) Stop(ctx context.Context, name string) error {
	a, err := c.apps.find(name)
	if err != nil {
		return err
	}
	// Recorded first: a reload or an upgrade while the processes stop
	// must already find the app stopped.
	if err := c.apps.ops.setStopped(appName(a.Site(), a.Path()), true); err != nil {
		c.log.Warn("the stop is not saved for a restart of gatehouse", "app", name, "err", err)
	}
	if err := a.Stop(ctx); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

func (c *controller) Start(ctx context.Context, name string) error {
	a, err := c.apps.find(name)
	if err != nil {
		return err
	}
	if err := c.apps.ops.setStopped(appName(a.Site(), a.Path()), false); err != nil {
		c.log.Warn("the start is not saved for a restart of gatehouse", "app", name, "err", err)
	}
	if err := a.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// Scale sets the app's number of processes and keeps it across
// web.config changes, reload and upgrade (and, saved, a restart).
func (c *controller) Scale(ctx context.Context, name string, n int) error {
	if n < 1 {
		return fmt.Errorf("scale %s: %d processes: want 1 or more", name, n)
	}
	a, err := c.apps.find(name)
	if err != nil {
		return err
	}
	if err := c.apps.ops.setScale(appName(a.Site(), a.Path()), n); err != nil {
		c.log.Warn("the scale is not saved for a restart of gatehouse", "app", name, "err", err)
	}
	if err := a.Scale(ctx, n); err != nil {
		return fmt.Errorf("scale %s: %w", name, err)
	}
	return nil
}

// Save keeps the operator's stops in the state file from now on, so they
// outlive a restart of Gatehouse; forget removes the file.
func (c *controller) Save(_ context.Context, forget bool) error {
	if err := c.apps.ops.save(forget); err != nil {
		return err
	}
	if forget {
		c.log.Info("state file removed: a restart of gatehouse starts from the configuration alone", "file", c.apps.ops.file)
	} else {
		c.log.Info("state saved: the operator's stops outlive a restart of gatehouse", "file", c.apps.ops.file)
	}
	return nil
}

func (c *controller) Reload(ctx context.Context) error { return c.reload(ctx) }

// ReopenLogs reopens the access logs and starts new stdout log files for
// the apps that write them.
func (c *controller) ReopenLogs(context.Context) error {
	errs := []error{c.srv.ReopenLogs()}
	for _, a := range c.apps.list() {
		if err := a.ReopenLogs(); err != nil {
			errs = append(errs, fmt.Errorf("%s: stdout log: %w", appName(a.Site(), a.Path()), err))
		}
	}
	return errors.Join(errs...)
}

// Ready is the readiness probe: the listeners are bound and no app that
// starts at boot is still starting (an app started on demand does not
// hold readiness back, or it would never get its first request).
func (c *controller) Ready() error {
	if !c.srv.Serving() {
		return errors.New("not serving: starting or shutting down")
	}
	for _, a := range c.apps.list() {
		if !a.StartsAtBoot() {
			continue
		}
		if st := a.Status(); st.State == "starting" || (st.State == "idle" && st.Pool.Starts == 0) {
			return fmt.Errorf("app %s is starting", appName(a.Site(), a.Path()))
		}
	}
	return nil
}

// appSet tracks the open apps, for the control commands and the metrics.
type appSet struct {
	metrics  *metrics.Metrics
	registry *prometheus.Registry
	// dirs are the sites' directories (Active Directory group names).
	dirs directories
	// ops is the operator's state (stopped apps); serve sets it before it
	// opens an app.
	ops *opState

	mu   sync.Mutex // protects apps
	apps map[*app.App]struct{}
}

// newAppSet returns an empty set with its metrics on a new registry.
func newAppSet() *appSet {
	s := &appSet{registry: prometheus.NewRegistry()}
	s.metrics = metrics.New(s.registry, s.gauges)
	s.metrics.WatchDirectories(s.registry, func() []metrics.Directory {
		var out []metrics.Directory
		sites, hs := s.dirs.health()
		for i, h := range hs {
			out = append(out, metrics.Directory{Site: sites[i], Up: h.Up, Lookups: h.Lookups, CacheHits: h.CacheHits, Failures: h.Failures})
		}
		return out
	})
	return s
}

// instrument has the front door report TLS handshakes and certificate
// expiry to the metrics.
func (s *appSet) instrument(srv *frontend.Server) {
	srv.OnTLSHandshake(s.metrics.TLSHandshake)
	s.metrics.WatchCertificates(s.registry, func() []metrics.Cert {
		var out []metrics.Cert
		for _, c := range srv.Certificates() {
			out = append(out, metrics.Cert{Listener: c.Listener, Host: c.Host, Subject: c.Subject, NotAfter: c.NotAfter})
		}
		return out
	})
}

// gauges reads the apps' in-flight, queued and process counts for a scrape.
func (s *appSet) gauges() []metrics.AppGauges {
	var out []metrics.AppGauges
	for _, a := range s.list() {
		st := a.Pool().Status()
		g := metrics.AppGauges{Site: a.Site(), App: a.Path(), Queued: st.Queued, Processes: map[string]int{}}
		for _, p := range st.Processes {
			g.InFlight += p.Outstanding
			g.Processes[p.State]++
		}
		out = append(out, g)
	}
	return out
}

// add tracks a; watch, if not nil, is closed with it.
func (s *appSet) add(a *app.App, watch *devWatcher) frontend.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = make(map[*app.App]struct{})
	}
	s.apps[a] = struct{}{}
	return trackedApp{a, s, watch}
}

func (s *appSet) list() []*app.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]*app.App, 0, len(s.apps))
	for a := range s.apps {
		list = append(list, a)
	}
	return list
}

// find returns the app called name: "SITE/PATH"; a bare "SITE" is its root
// app. Case does not matter, as in IIS paths.
func (s *appSet) find(name string) (*app.App, error) {
	want := name
	if !strings.Contains(want, "/") {
		want += "/"
	}
	if len(want) > 1 && strings.HasSuffix(want, "/") && strings.Count(want, "/") > 1 {
		want = strings.TrimSuffix(want, "/")
	}
	var names []string
	for _, a := range s.list() {
		n := appName(a.Site(), a.Path())
		if strings.EqualFold(n, want) {
			return a, nil
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("%w %q; the apps are: %s", admin.ErrNotFound, name, strings.Join(names, ", "))
}

// recycle recycles every app at once and returns their errors joined.
func (s *appSet) recycle(ctx context.Context) error {
	list := s.list()
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, a := range list {
		wg.Go(func() {
			if err := a.Recycle(ctx); err != nil {
				errs[i] = fmt.Errorf("recycle %s: %w", appName(a.Site(), a.Path()), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// trackedApp removes itself from its set when closed, and stops its
// serve --watch watcher.
type trackedApp struct {
	*app.App
	set   *appSet
	watch *devWatcher // nil without serve --watch
}

func (t trackedApp) Close(ctx context.Context) error {
	if t.watch != nil {
		t.watch.Close()
	}
	t.set.mu.Lock()
	delete(t.set.apps, t.App)
	// A reload that moved the app to another folder opened its successor
	// (same names, same series) first: keep the series for it.
	successor := false
	for a := range t.set.apps {
		successor = successor || (a.Site() == t.Site() && a.Path() == t.Path())
	}
	t.set.mu.Unlock()
	if !successor {
		t.set.metrics.Forget(t.Site(), t.Path())
	}
	return t.App.Close(ctx)
}
