package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/frontend"
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
}

func (f *serveFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: want text or json", f.logFormat)
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
		if cfg, err = siteconfig.Load(f.configFile); err != nil {
			return configErr(err)
		}
	case f.configFile == "" && len(pos) == 1:
		dir, err := filepath.Abs(pos[0])
		if err != nil {
			return err
		}
		cfg = siteconfig.Single(dir, f.listen)
	default:
		fs.Usage()
		return usageErr("serve takes one app folder, or --config FILE")
	}
	keeper := startKeeper(log)
	defer closeKeeper(keeper, log) // after serve, so after the front door and its apps stopped
	apps := &appSet{}
	open := func(ctx context.Context, spec frontend.AppSpec) (frontend.App, error) {
		a, err := app.Open(ctx, spec.Dir, app.Options{
			Site: spec.Site, Path: spec.Path, HTTPSPort: spec.HTTPSPort,
			StartAtBoot: f.startAtBoot, Log: log, Keeper: keeper,
		})
		if err != nil {
			return nil, err
		}
		return apps.add(a), nil
	}
	return serve(ctx, &f, cfg, open, apps, log)
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
	keeper := startKeeper(log)
	defer closeKeeper(keeper, log) // after serve, so after the front door and its apps stopped
	apps := &appSet{}
	open := func(ctx context.Context, spec frontend.AppSpec) (frontend.App, error) {
		a, err := app.New(ctx, cfg, app.Options{Site: spec.Site, Path: spec.Path, HTTPSPort: spec.HTTPSPort,
			StartAtBoot: f.startAtBoot, Log: log, Keeper: keeper})
		if err != nil {
			return nil, err
		}
		return apps.add(a), nil
	}
	site := siteconfig.Single(abs, f.listen)
	site.Sites[0].Applications[0].NoWebConfig = true
	return serve(ctx, &f, site, open, apps, log)
}

// serve runs the front door until SIGTERM/SIGINT, reloading the site
// configuration on SIGHUP and recycling every app on SIGUSR1.
func serve(ctx context.Context, f *serveFlags, cfg *siteconfig.Config, open frontend.OpenFunc, apps *appSet, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv, err := frontend.New(cfg, open, log)
	if err != nil {
		return configErr(err)
	}
	if f.pidFile != "" {
		if err := os.WriteFile(f.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("write pid file: %w", err)
		}
		defer os.Remove(f.pidFile)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	var wg sync.WaitGroup
	defer wg.Wait()
	sigCtx, cancelSigs := context.WithCancel(ctx)
	defer cancelSigs()
	wg.Go(func() {
		for {
			select {
			case <-sigCtx.Done():
				return
			case s := <-sigs:
				switch {
				case s == syscall.SIGUSR1 || (s == syscall.SIGHUP && f.configFile == ""):
					log.Info("recycling every app", "signal", s.String())
					apps.recycle(sigCtx, log)
				case s == syscall.SIGHUP:
					reload(sigCtx, srv, f.configFile, log)
				}
			}
		}
	})
	err = srv.Run(ctx)
	cancelSigs()
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

func reload(ctx context.Context, srv *frontend.Server, file string, log *slog.Logger) {
	cfg, err := siteconfig.Load(file)
	if err == nil {
		err = srv.Reload(ctx, cfg)
	}
	if err != nil {
		log.Error("reload rejected; the running configuration stays in force", "file", file, "err", err)
		return
	}
	log.Info("configuration reloaded", "file", file)
}

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return &exitError{exitUsage, err}
}

// appSet tracks the open apps, for "recycle every app".
type appSet struct {
	mu   sync.Mutex // protects apps
	apps map[*app.App]struct{}
}

func (s *appSet) add(a *app.App) frontend.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = make(map[*app.App]struct{})
	}
	s.apps[a] = struct{}{}
	return trackedApp{a, s}
}

func (s *appSet) recycle(ctx context.Context, log *slog.Logger) {
	s.mu.Lock()
	list := make([]*app.App, 0, len(s.apps))
	for a := range s.apps {
		list = append(list, a)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range list {
		wg.Go(func() {
			if err := a.Recycle(ctx); err != nil {
				log.Error("recycle", "app", a.Config().Dir, "err", err)
			}
		})
	}
	wg.Wait()
}

// trackedApp removes itself from its set when closed.
type trackedApp struct {
	*app.App
	set *appSet
}

func (t trackedApp) Close(ctx context.Context) error {
	t.set.mu.Lock()
	delete(t.set.apps, t.App)
	t.set.mu.Unlock()
	return t.App.Close(ctx)
}
