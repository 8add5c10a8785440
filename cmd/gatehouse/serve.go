package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/directory"
	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/ratelog"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

var errHelp = flag.ErrHelp

// serveFlags are the flags serve and run share.
type serveFlags struct {
	listen      string
	configFile  string
	logFormat   string
	logLevel    string
	pidFile     string
	startAtBoot bool
	adminSocket string
	adminAddr   string
	adminToken  string
	metricsAddr string
	accessLog   string
	accessFmt   string
	accessCols  string
	allowRoot   bool
	watch       bool
	stateFile   string
	// ring keeps the latest log lines about each app for gatehouse logs;
	// logger sets it.
	ring *logRing
}

func (f *serveFlags) register(fs *flag.FlagSet, withConfig bool) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`address` to accept HTTP on (host:port; \":80\" for every interface)")
	if withConfig {
		fs.StringVar(&f.configFile, "config", "", "site configuration `file` (YAML) listing sites, bindings and apps; replaces DIR and --listen")
	}
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.pidFile, "pid-file", "", "write the process id to `file` (for gatehouse reload/recycle)")
	fs.BoolVar(&f.startAtBoot, "start-at-boot", false, "start the apps at once instead of on the first request")
	fs.StringVar(&f.stateFile, "state-file", "", "`file` where gatehouse save keeps the operator's stops and scales, read at start (default: beside --pid-file, gatehouse.pid → gatehouse.state, else beside the admin socket)")
	fs.BoolVar(&f.watch, "watch", false, "for development: recycle an app when a file in its folder changes (debounced; logs, app_offline.htm, web.config, .git and node_modules do not count)")
	fs.BoolVar(&f.allowRoot, "allow-root", false, "let apps that set no user run as root when gatehouse runs as root (refused otherwise)")
	fs.StringVar(&f.adminSocket, "admin", "", "admin `socket` for gatehouse status/recycle/stop/start/reload (default: beside --pid-file, else gatehouse.sock in the first of $RUNTIME_DIRECTORY, "+admin.RunDir+" (if writable), $XDG_RUNTIME_DIR/gatehouse, $TMPDIR/gatehouse-UID: where the commands look; \"off\" for none)")
	fs.StringVar(&f.accessLog, "access-log", "", "write a request log to `file` (/dev/stdout works); with --config, use each site's accessLog instead")
	fs.StringVar(&f.accessFmt, "access-log-format", "w3c", "request log format: w3c (IIS's W3C extended format) or json")
	fs.StringVar(&f.accessCols, "access-log-fields", "", "W3C request log `fields` as IIS's logExtFileFlags, comma-separated (default \""+siteconfig.DefaultW3CFlags+"\", IIS's; add BytesSent, BytesRecv, Host, ProtocolVersion, SiteName, ComputerName, Cookie)")
	fs.StringVar(&f.metricsAddr, "metrics", "", "also serve the Prometheus metrics and the health endpoints (only /metrics, /healthz and /readyz: for a scraper and Kubernetes probes) on this `address` (\":9100\"); they are always on the admin socket")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "also serve the admin API, health endpoints and metrics on this loopback `address` (127.0.0.1:9090); every call but /healthz, /readyz and /metrics needs \"Authorization: Bearer TOKEN\" (TOKEN from the --admin-token file), and a non-loopback Host or a foreign Origin is refused")
	fs.StringVar(&f.adminToken, "admin-token", "", "token `file` for --admin-addr, created (mode 0640, a random token) if missing, kept if present (default: beside the admin socket, gatehouse.sock → gatehouse.token); the control commands read it")
}

func (f *serveFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationUnits}
	// A flood (of refused requests, failing requests) must not flood the
	// log: past 20 lines of a kind per second the rest are counted and
	// summed up in one line (see package ratelog). The apps' own output
	// (records with a "stream" attribute) is exempt: the supervisor drops
	// and counts it itself.
	rl := ratelog.Options{Exempt: appOutput}
	var h slog.Handler
	switch f.logFormat {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, usageErr("--log-format %q: want text or json", f.logFormat)
	}
	// The ring sees every line about an app, before the rate limit.
	f.ring = newLogRing()
	return slog.New(&ringHandler{next: ratelog.New(h, rl), ring: f.ring}), nil
}

// appOutput reports whether r is a line of an app's output (the
// supervisor tags those with "stream").
func appOutput(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == "stream"
		return !found
	})
	return found
}

// checkListen rejects a --listen that is not host:port, with the fix.
func (f *serveFlags) checkListen() error {
	host, port, err := net.SplitHostPort(f.listen)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr == nil && (host == "" || net.ParseIP(host) != nil || host == "localhost") {
			return nil
		}
	}
	hint := "host:port, e.g. 127.0.0.1:8080 (this machine) or :8080 (every interface)"
	if _, perr := strconv.ParseUint(f.listen, 10, 16); perr == nil {
		hint = fmt.Sprintf(":%s (every interface) or 127.0.0.1:%s (this machine only)", f.listen, f.listen)
	}
	return usageErr("--listen %q is not an address: want %s", f.listen, hint)
}

// checkAppFolder says plainly when the app folder or its web.config is
// missing.
func checkAppFolder(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("app folder %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("app folder %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a folder: give the folder that holds web.config", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "web.config")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s has no web.config (to serve a command without one: gatehouse run -- CMD ARGS)", dir)
	}
	return nil
}

// warnProgram warns at start when the app's program cannot be found, rather
// than letting the first request find out (502.5), and when its arguments
// name Windows absolute paths.
func warnProgram(a *app.App, log *slog.Logger) {
	cfg := a.Config()
	if _, err := programOf(cfg); err != nil {
		log.Warn("the app's program cannot be found; requests will get 502.5 until it exists",
			"app", appName(a.Site(), a.Path()), "err", err)
	}
	for _, arg := range config.WindowsPaths(cfg.Args) {
		log.Warn(windowsPathWarning(arg), "app", appName(a.Site(), a.Path()), "file", cfg.File)
	}
}

// applyAccessLog turns --access-log on for the single site of serve DIR and
// run, which have no site configuration file to set it in.
func (f *serveFlags) applyAccessLog(cfg *siteconfig.Config) error {
	if f.accessLog == "" {
		if f.accessCols != "" {
			return usageErr("--access-log-fields needs --access-log")
		}
		return nil
	}
	if f.accessFmt != "w3c" && f.accessFmt != "json" {
		return usageErr("--access-log-format %q: want w3c or json", f.accessFmt)
	}
	path, err := filepath.Abs(f.accessLog)
	if err != nil {
		return usageErr("--access-log: %v", err)
	}
	if f.accessCols != "" {
		if f.accessFmt != "w3c" {
			return usageErr("--access-log-fields is for --access-log-format w3c; the JSON log has every field")
		}
		if _, err := siteconfig.SelectW3CFields(f.accessCols); err != nil {
			return usageErr("--access-log-fields: %v", err)
		}
	}
	cfg.Sites[0].AccessLog = siteconfig.AccessLog{Path: path, Format: f.accessFmt, Fields: f.accessCols}
	return nil
}

// durationUnits writes durations with their unit ("1.5s", "87ms") in
// both log formats: the JSON handler would write bare nanoseconds.
func durationUnits(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// parseArgs parses flags that may come before or after the positional
// arguments ("serve ./publish --listen :80" works), up to a "--".
func parseArgs(fs *flag.FlagSet, args []string) (positional, rest []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		left := fs.Args()
		// Parse stops at the first positional argument, or consumes a "--".
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return positional, left, nil
		}
		if len(left) == 0 {
			return positional, nil, nil
		}
		positional = append(positional, left[0])
		args = left[1:]
	}
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gatehouse %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("serve", "serve [flags] DIR | serve --config FILE [flags]\n\nServes the app whose web.config is in DIR (started on the first request),\nor every site and app listed in the --config file.", stderr)
	f.register(fs, true)
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return flagErr(err)
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	var cfg *siteconfig.Config
	switch {
	case f.configFile != "" && len(pos) == 0:
		if f.accessLog != "" {
			return usageErr("--access-log is for serve DIR and run; with --config, set accessLog on the site")
		}
		if cfg, err = siteconfig.Load(f.configFile); err != nil {
			return configErr(err)
		}
	case f.configFile == "" && len(pos) == 1:
		dir, err := filepath.Abs(pos[0])
		if err != nil {
			return err
		}
		if err := f.checkListen(); err != nil {
			return err
		}
		if err := checkAppFolder(dir); err != nil {
			return configErr(err)
		}
		cfg = siteconfig.Single(dir, f.listen)
		if err := f.applyAccessLog(cfg); err != nil {
			return err
		}
	default:
		fs.Usage()
		return usageErr("serve takes one app folder, or --config FILE")
	}
	e := bindEarly(cfg, log)
	defer e.pre.Close()
	keeper := startKeeper(log)
	defer closeKeeper(keeper, log) // after serve, so after the front door and its apps stopped
	apps := newAppSet()
	cgroups := supervisor.NewCgroups(log) // looks at the system when the first app with limits starts
	replays := &replayCaches{}
	open := func(ctx context.Context, spec frontend.AppSpec) (frontend.App, error) {
		pool, err := appPool(spec.Pool, cgroups, spec.Site+spec.Path, f.allowRoot)
		if err != nil {
			// A broken web.config is the first thing to fix: say that first.
			wc, werr := webconfig.Load(filepath.Join(spec.Dir, "web.config"))
			if werr == nil {
				werr = app.CheckRules(wc, spec.ProxyUpstreams)
			}
			if werr != nil {
				return nil, werr
			}
			return nil, err
		}
		dir, err := apps.dirs.of(spec.Site, spec.Auth, log)
		if err != nil {
			return nil, err
		}
		inst := apps.metrics.App(spec.Site, spec.Path)
		a, err := app.Open(ctx, spec.Dir, app.Options{
			Site: spec.Site, Path: spec.Path, HTTPSPort: spec.HTTPSPort, Auth: authSettings(spec.Auth, replays.of(spec.Site), dir),
			StartAtBoot: f.startAtBoot, Stopped: apps.ops.isStopped(appName(spec.Site, cmp.Or(spec.Path, "/"))), Log: log, Keeper: keeper,
			Processes: apps.ops.processes(appName(spec.Site, cmp.Or(spec.Path, "/"))),
			AppPool:   pool, CleanEnvironment: spec.Pool.CleanEnvironment,
			Compression: spec.Compression, StripPathBase: spec.StripPathBase, Protocol: spec.Protocol,
			NoServerFiltering: spec.RequestFiltering.DisableServerDefaults,
			ProxyUpstreams:    spec.ProxyUpstreams,
			Events:            inst.ProcessEvent,
			Observers:         []pipeline.Observer{inst},
		})
		if err != nil {
			return nil, err
		}
		warnProgram(a, log)
		return apps.add(a, f.watchApp(a, log)), nil
	}
	return serve(ctx, &f, cfg, e, open, apps, log)
}

// watchApp starts serve --watch's watcher of a's folder; nil without
// --watch, or (with a warning) when the folder cannot be watched.
func (f *serveFlags) watchApp(a *app.App, log *slog.Logger) *devWatcher {
	if !f.watch {
		return nil
	}
	d, err := watchApp(a, log)
	if err != nil {
		log.Warn("cannot watch the app's folder; changes will not recycle it", "app", appName(a.Site(), a.Path()), "err", err)
	}
	return d
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("run", "run [flags] -- CMD [ARGS…]\n\nServes CMD, which must listen on 127.0.0.1:$ASPNETCORE_PORT (also in $PORT and\n$HTTP_PLATFORM_PORT; %ASPNETCORE_PORT% in ARGS is replaced by the port).\nThe web.config attributes are flags here.", stderr)
	f.register(fs, false)
	cfg := config.Default(".")
	fs.Var(durationFlag{&cfg.StartupTimeLimit}, "startup-time-limit", "how long the app may take to listen (00:02:00, 2m or 120)")
	fs.Var(durationFlag{&cfg.ShutdownTimeLimit}, "shutdown-time-limit", "how long a stopping app gets before it is killed (00:00:10, 10s or 10)")
	fs.Var(durationFlag{&cfg.RequestTimeout}, "request-timeout", "how long the app may stay silent on a request, 502.3 after (00:02:00, 2m or 120)")
	fs.IntVar(&cfg.RapidFailsPerMinute, "rapid-fails-per-minute", cfg.RapidFailsPerMinute, "crashes allowed per minute before restarts pause")
	fs.IntVar(&cfg.ProcessesPerApplication, "processes", cfg.ProcessesPerApplication, "number of app processes")
	stdoutLog := fs.String("stdout-log", "", "write the app's output to `prefix`_<timestamp>_<pid>.log instead of the log")
	dir := fs.String("dir", ".", "working `directory` of the app")
	pos, cmdline, err := parseArgs(fs, args)
	if err != nil {
		return flagErr(err)
	}
	if len(pos) > 0 {
		cmdline = append(pos, cmdline...)
	}
	attrs := map[string]string{
		"startup-time-limit": "startupTimeLimit", "shutdown-time-limit": "shutdownTimeLimit",
		"request-timeout": "requestTimeout", "rapid-fails-per-minute": "rapidFailsPerMinute",
		"processes": "processesPerApplication", "stdout-log": "stdoutLogFile",
	}
	fs.Visit(func(fl *flag.Flag) {
		if a, ok := attrs[fl.Name]; ok {
			cfg.Set[a] = true
		}
	})
	if len(cmdline) == 0 {
		fs.Usage()
		return usageErr("run needs a command after --")
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	cfg.Dir = abs
	cfg.ProcessPath = cmdline[0]
	cfg.Args = cmdline[1:]
	cfg.Arguments = strings.Join(cmdline[1:], " ")
	if *stdoutLog != "" {
		cfg.StdoutLogEnabled = true
		cfg.Set["stdoutLogEnabled"] = true
		cfg.StdoutLogFile, _ = filepath.Abs(*stdoutLog)
	}
	if err := cfg.Validate(); err != nil {
		return configErr(err)
	}
	if err := checkImplicitRoot(f.allowRoot, "the app"); err != nil {
		return configErr(err)
	}
	if err := f.checkListen(); err != nil {
		return err
	}
	site := siteconfig.Single(abs, f.listen)
	site.Sites[0].Applications[0].NoWebConfig = true
	if err := f.applyAccessLog(site); err != nil {
		return err
	}
	e := bindEarly(site, log)
	defer e.pre.Close()
	keeper := startKeeper(log)
	defer closeKeeper(keeper, log) // after serve, so after the front door and its apps stopped
	apps := newAppSet()
	open := func(ctx context.Context, spec frontend.AppSpec) (frontend.App, error) {
		inst := apps.metrics.App(spec.Site, spec.Path)
		a, err := app.New(ctx, cfg, app.Options{Site: spec.Site, Path: spec.Path, HTTPSPort: spec.HTTPSPort,
			StartAtBoot: f.startAtBoot, Stopped: apps.ops.isStopped(appName(spec.Site, cmp.Or(spec.Path, "/"))), Log: log, Keeper: keeper,
			Processes: apps.ops.processes(appName(spec.Site, cmp.Or(spec.Path, "/"))),
			Events:    inst.ProcessEvent, Observers: []pipeline.Observer{inst}})
		if err != nil {
			return nil, err
		}
		warnProgram(a, log)
		return apps.add(a, f.watchApp(a, log)), nil
	}
	return serve(ctx, &f, site, e, open, apps, log)
}

// early is what serve and run take before the keeper starts.
type early struct {
	sd  systemdEnv         // the sockets and notify addresses handed over
	pre *frontend.Prebound // the listeners bound at once; nil with sockets handed over
}

// bindEarly takes what systemd or an upgrading Gatehouse handed over and,
// when no sockets came with it, binds cfg's listeners at once
// (frontend.Prebind): the ports accept while the keeper starts and the
// apps open, and a client that connects meanwhile waits in the backlog
// until Run accepts it. It runs before the keeper is started, so neither
// the keeper nor an app inherits the environment it takes, and so the
// keeper's fork and exec (on one P, they run whenever the main goroutine
// yields) do not come before the bind. The caller closes e.pre once serve
// returned.
func bindEarly(cfg *siteconfig.Config, log *slog.Logger) early {
	e := early{sd: takeSystemdEnv(log)}
	if len(e.sd.sockets) == 0 {
		e.pre = frontend.Prebind(cfg)
	}
	return e
}

// serve runs the front door until SIGTERM/SIGINT, reloading the site
// configuration on SIGHUP, recycling every app on SIGUSR1, upgrading on
// SIGUSR2 and reopening the access logs on SIGWINCH, with the admin
// endpoint beside it. The signals are nginx's but for reopen: nginx
// reopens on USR1, which recycles here (ANCM's app-pool recycle came
// first), so reopen takes WINCH, which nginx uses only in its master
// process to stop workers, a thing Gatehouse has no counterpart of.
func serve(ctx context.Context, f *serveFlags, cfg *siteconfig.Config, e early, open frontend.OpenFunc, apps *appSet, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	setGCDefault(os.Getenv)

	sd := e.sd
	ops, err := loadOpState(cmp.Or(f.stateFile, stateFile(f.pidFile, f.socketPath())), log)
	if err != nil {
		return err
	}
	apps.ops = ops
	srv, err := frontend.New(cfg, open, log, frontend.WithGlobalRules(globalRules(log)), frontend.WithPrebound(e.pre))
	if err != nil {
		return configErr(err)
	}
	for name, lns := range sd.sockets {
		for _, ln := range lns {
			srv.Inherit(name, ln)
		}
	}
	apps.instrument(srv)
	if f.pidFile != "" {
		pid := strconv.Itoa(os.Getpid()) + "\n"
		if err := os.WriteFile(f.pidFile, []byte(pid), 0o644); err != nil {
			return fmt.Errorf("write pid file: %w", err)
		}
		defer func() {
			// After an upgrade the file names the new Gatehouse.
			if b, err := os.ReadFile(f.pidFile); err == nil && string(b) == pid {
				os.Remove(f.pidFile)
			}
		}()
	}
	ctl := &controller{srv: srv, apps: apps, log: log, ring: f.ring, started: time.Now()}
	var socks *adminSockets
	if exe, err := os.Executable(); err == nil {
		ctl.upgrade = &upgrader{exe: exe, args: os.Args[1:], srv: srv, notify: sd.notify, log: log,
			admin: func() ([]*os.File, []string) { return socks.files() }, handoff: stop,
			env: func() []string { return []string{ops.env()} }}
	}
	handedOver := func() bool { return ctl.upgrade != nil && ctl.upgrade.handedOver() }
	ctl.reload = func(ctx context.Context) error {
		sd.notify.reloading()
		var err error
		if f.configFile == "" {
			log.Info("recycling every app", "why", "reload without a --config file")
			err = apps.recycle(ctx)
		} else {
			err = reload(ctx, srv, f.configFile, log)
		}
		status := servingStatus(ctl)
		if err != nil {
			status = "reload failed, still " + status + ": " + firstLine(err.Error())
		}
		sd.notify.ready(status)
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	startReaper(ctx, &wg, log)
	wg.Go(func() {
		select {
		case <-srv.Listening():
			sd.notify.ready(servingStatus(ctl))
			sd.upgradeReady.send("READY=1") // to the Gatehouse that handed its sockets over
		case <-ctx.Done():
			return
		}
		<-ctx.Done()
		sd.notify.stopping()
	})
	// The admin endpoint outlives the front door's shutdown, so /readyz
	// says 503 while connections drain; it stops once Run returned.
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	socks, err = startAdmin(adminCtx, &wg, f, ctl, apps.metrics.Handler(), log, sd.adminSockets, handedOver)
	if err != nil {
		return err
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	sigCtx, cancelSigs := context.WithCancel(ctx)
	defer cancelSigs()
	wg.Go(func() {
		for {
			select {
			case <-sigCtx.Done():
				return
			case s := <-sigs:
				switch s {
				case syscall.SIGUSR1:
					log.Info("recycling every app", "signal", s.String())
					if err := apps.recycle(sigCtx); err != nil {
						log.Error("recycle", "err", err)
					}
				case syscall.SIGHUP:
					_ = ctl.reload(sigCtx) // logged by reload
				case syscall.SIGUSR2:
					_ = ctl.Upgrade(sigCtx) // logged by the upgrader
				case syscall.SIGWINCH:
					if err := ctl.ReopenLogs(sigCtx); err != nil {
						log.Error("reopen logs", "err", err)
					}
				}
			}
		}
	})
	err = srv.Run(ctx)
	stop() // ends ctx also when Run failed (a bind error): the goroutines above wait for it
	cancelSigs()
	stopAdmin()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// startKeeper starts the watchdog that kills the apps' process groups if
// gatehouse dies, even by SIGKILL. If it cannot, gatehouse runs without it
// (nil) and says so.
func startKeeper(log *slog.Logger) *supervisor.Keeper {
	k, err := supervisor.NewKeeper(log)
	if err != nil {
		log.Warn("running without a keeper: if gatehouse is killed, the apps' child processes may outlive it", "err", err)
		return nil
	}
	return k
}

// closeKeeper stops the keeper once every app has stopped.
func closeKeeper(k *supervisor.Keeper, log *slog.Logger) {
	if err := k.Close(); err != nil {
		log.Warn("stop keeper", "err", err)
	}
}

// reload re-reads the site configuration file and applies it. A rejected
// configuration is logged here (an applied one by the front door, with the
// listeners and apps it opened and closed), and reload returns an error wrapping
// admin.ErrInvalidConfig when the new configuration was rejected (the
// running one stays in force).
func reload(ctx context.Context, srv *frontend.Server, file string, log *slog.Logger) error {
	start := time.Now()
	cfg, err := siteconfig.Load(file)
	if err == nil {
		err = srv.Reload(ctx, cfg)
	}
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		log.Error("reload rejected; the running configuration stays in force", "file", file, "err", err, "took", took)
		return fmt.Errorf("%w; the running configuration stays in force: %w", admin.ErrInvalidConfig, err)
	}
	return nil // frontend.Server.Reload logged the one line of it
}

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return &exitError{exitUsage, err}
}

// replayCaches gives each site one Kerberos replay cache, shared by its
// apps, so a token cannot be replayed to a sibling app.
type replayCaches struct {
	mu sync.Mutex // protects m
	m  map[string]*auth.ReplayCache
}

func (r *replayCaches) of(site string) *auth.ReplayCache {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*auth.ReplayCache{}
	}
	c := r.m[site]
	if c == nil {
		c = auth.NewReplayCache()
		r.m[site] = c
	}
	return c
}

// directories gives each site one directory (and so one cache of group
// names), shared by its apps and kept across reloads while the site's
// directory settings stay the same. A site whose settings change gets a
// new one; the admin status and the metrics show each site's latest.
type directories struct {
	mu sync.Mutex // protects m
	m  map[string]siteDirectory
}

type siteDirectory struct {
	key string // the settings it was made with
	dir *directory.Directory
}

// of returns the site's directory, nil when it has none.
func (d *directories) of(site string, a siteconfig.Authentication, log *slog.Logger) (*directory.Directory, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a.Directory.IsZero() {
		delete(d.m, site)
		return nil, nil
	}
	key := fmt.Sprintf("%+v %s", a.Directory, a.Keytab)
	if sd, ok := d.m[site]; ok && sd.key == key {
		return sd.dir, nil
	}
	dir, err := newDirectory(a, log.With("site", site))
	if err != nil {
		return nil, fmt.Errorf("site %s: authentication.%w", site, err)
	}
	if d.m == nil {
		d.m = map[string]siteDirectory{}
	}
	d.m[site] = siteDirectory{key, dir}
	return dir, nil
}

// health returns each site's directory state, by site.
func (d *directories) health() (sites []string, hs []directory.Health) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for site := range d.m {
		sites = append(sites, site)
	}
	slices.Sort(sites)
	for _, site := range sites {
		hs = append(hs, d.m[site].dir.Health())
	}
	return sites, hs
}

// newDirectory maps a site's directory settings onto the directory's. A
// Kerberos bind's key comes from the site's keytab unless bindKeytab says
// otherwise.
func newDirectory(a siteconfig.Authentication, log *slog.Logger) (*directory.Directory, error) {
	c := a.Directory
	kt := c.BindKeytab
	if kt == "" {
		kt = auth.KeytabPath(a.Keytab)
	}
	return directory.New(directory.Config{
		URLs: c.URL, Domain: c.Domain, CAFile: c.CAFile,
		BindUser: c.BindUser, BindPasswordFile: c.BindPasswordFile, AllowCleartextBind: c.AllowCleartextBind,
		BindPrincipal: c.BindPrincipal, Keytab: kt,
		Timeout: c.Timeout, TTL: c.CacheTTL, NegativeTTL: c.NegativeCacheTTL,
	}, log)
}

// authSettings maps a site's authentication settings onto the app's.
func authSettings(a siteconfig.Authentication, replay *auth.ReplayCache, dir *directory.Directory) auth.Settings {
	s := auth.Settings{
		Schemes:             config.Schemes{Anonymous: a.Anonymous == nil || *a.Anonymous, Windows: a.Windows, Basic: a.Basic, BasicRealm: a.BasicRealm},
		Keytab:              a.Keytab,
		ServicePrincipal:    a.ServicePrincipal,
		MaxClockSkew:        a.MaxClockSkew,
		UserFile:            a.UserFile,
		GroupFile:           a.GroupFile,
		AllowCleartextBasic: a.AllowCleartextBasic,
		NoPersist:           a.PerRequestNegotiate,
		Replay:              replay,
		UserNameFormat:      a.UserNameFormat,
		Directory:           dir,
	}
	return s
}
