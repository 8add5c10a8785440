// Package app is one application as ANCM knows it: a folder with a
// web.config, its process pool and the proxy in front of it, and the file
// watchers that make deploys work (app_offline.htm, web.config changes, a
// restart marker). The front door mounts an App at a virtual path and
// hands it requests through Current (pipeline.App).
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Options say where an App is mounted and what it inherits.
type Options struct {
	// Site and Path name the mount point: Path is the virtual path ("/" or
	// "/api"), passed to the app as ASPNETCORE_APPL_PATH. Empty Path means "/".
	Site string
	Path string
	// HTTPSPort is the port of the site's https binding, passed as
	// ASPNETCORE_ANCM_HTTPS_PORT; 0 for none.
	HTTPSPort int
	// BaseEnv is the environment the app process inherits; nil means
	// os.Environ().
	BaseEnv []string
	// StartAtBoot starts the app's processes at once instead of on the
	// first request, whatever web.config says.
	StartAtBoot bool
	// Processes, if positive, is the number of processes in place of
	// web.config's processesPerApplication: a `gatehouse scale` carried
	// over an upgrade or a restart. 0 means web.config's.
	Processes int
	// Stopped opens the app stopped by the operator, as Stop leaves it:
	// an earlier `gatehouse stop` carried over an upgrade or a restart.
	// Nothing starts (not even at boot) until Start.
	Stopped bool
	// Compression is the site config's dynamic compression (types, levels,
	// minimum size, and whether apps without <urlCompression> compress).
	// The zero value means the defaults, compression off.
	Compression siteconfig.Compression
	// NoServerFiltering leaves out the request-filtering lists that IIS's
	// applicationHost.config gives every site (iis.WithServerDefaults): only
	// the app's web.config filters (the site config's
	// requestFiltering.disableServerDefaults).
	NoServerFiltering bool
	// ProxyUpstreams are the other servers ("host:port", lower case) that
	// the app's URL Rewrite rules may send requests to (the site config's
	// proxyUpstreams); none by default, so a web.config cannot make
	// Gatehouse reach hosts the operator did not list.
	ProxyUpstreams []string
	// StripPathBase forwards requests without Path (the site config's
	// stripPathBase), with X-Forwarded-Prefix set to Path; for apps that are
	// not ASP.NET. By default the app sees the full path, as under ANCM.
	StripPathBase bool
	// Protocol is the site config's protocol for the app ("http1", "h2c"):
	// it applies when web.config has no protocol handlerSetting. "" leaves
	// web.config's (default http1).
	Protocol string
	// Log receives the app's events; nil means slog.Default().
	Log *slog.Logger
	// Auth is the site's authentication settings (default schemes, keytab,
	// user files). The zero value means IIS's defaults: anonymous only, the
	// keytab found as MIT Kerberos finds it, no Basic users.
	Auth auth.Settings
	// Keeper, if set, kills the app's process groups if Gatehouse dies (see
	// supervisor.Keeper). The App does not own it: the caller closes it after
	// the App. nil means none.
	Keeper *supervisor.Keeper
	// AppPool holds the application-pool settings of the site config's
	// application entry (identity, umask, working folder, limits, recycling);
	// the zero value changes nothing. With an Identity, the app gets that
	// account's HOME, USER and LOGNAME.
	AppPool supervisor.AppPool
	// CleanEnvironment starts the app with only PATH, LANG and TZ from
	// BaseEnv (plus HOME, USER, LOGNAME), instead of all of it; web.config's
	// environmentVariables are added as always.
	CleanEnvironment bool
	// Events, if set, gets the lifecycle events of the app's processes (see
	// supervisor.Spec.Events): metrics hang here. nil means none.
	Events func(supervisor.Event)
	// Observers are told about every finished request of the app, besides
	// the observers of its web.config stages (metrics). nil means none.
	Observers []pipeline.Observer
}

// App serves one application. Create it with Open or New; it must be closed
// with Close, which stops the app's processes and watchers.
type App struct {
	opts Options
	name string
	log  *slog.Logger

	// cur is the settings in force; replaced whole when web.config
	// changes, so a request reads all of them with one atomic load.
	cur atomic.Pointer[state]
	// auth checks credentials for the authentication stage; it outlives
	// web.config reloads (its replay cache must).
	auth *auth.Provider
	// offline holds the content of app_offline.htm while the file exists.
	offline atomic.Pointer[[]byte]
	pool    *supervisor.Pool

	mu     sync.Mutex // protects closed
	closed bool

	// processes is the operator's process count (Scale), in place of
	// web.config's; 0 for web.config's.
	processes atomic.Int64

	watch *watcher // nil when nothing is watched (gatehouse run)
	// recycles carries the watch loop's recycles to recycleLoop (buffered 1;
	// only the watch loop sends, coalescing with what is still queued).
	recycles chan recycleRequest
	cancel   context.CancelFunc
	wg       sync.WaitGroup // watchLoop, recycleLoop, the start at boot

	// testHookAcquire, if set, runs in backend.Acquire between the offline
	// check and the pool's Acquire (tests use it to widen that window).
	testHookAcquire func()
}

// Open loads dir/web.config and returns the App for it. A broken web.config
// is an error naming the file and line; nothing is started. Unless the
// settings ask for startAtBoot, no process starts before the first request.
func Open(ctx context.Context, dir string, opts Options) (*App, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open app %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("app folder %s does not exist", abs)
		}
		return nil, fmt.Errorf("app folder %s: %w", abs, err)
	}
	cfg, err := webconfig.Load(filepath.Join(abs, "web.config"))
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, opts)
}

// New returns the App for settings already loaded. When cfg.File is set the
// app folder is watched for app_offline.htm and web.config changes.
func New(ctx context.Context, cfg *config.App, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if opts.BaseEnv == nil {
		opts.BaseEnv = os.Environ()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	name := opts.Site + opts.Path
	if opts.Site == "" {
		name = filepath.Base(cfg.Dir)
	}
	if opts.Auth == (auth.Settings{}) {
		opts.Auth.Schemes = config.DefaultSchemes
	}
	a := &App{opts: opts, name: name, log: opts.Log.With("app", name)}
	a.processes.Store(int64(opts.Processes))
	a.auth = auth.NewProvider(opts.Auth, a.log)
	cfg.SiteSchemes = opts.Auth.Schemes
	inheritProtocol(cfg, opts.Protocol)
	if cfg.HostingModel == "inprocess" {
		a.log.Info("hostingModel is inprocess; Gatehouse runs the app out of process", "file", cfg.File)
	}
	st, err := a.newState(cfg)
	if err != nil {
		return nil, err
	}
	a.cur.Store(st)
	a.pool = supervisor.NewPool(a.spec(cfg), opts.Log) // the pool tags its records with app itself
	if opts.Stopped {
		_ = a.pool.Halt(ctx) // no process yet: returns at once
		a.log.Info("app stays stopped by the operator (gatehouse start starts it)")
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.wg.Go(func() { a.auth.Watch(runCtx) })
	if cfg.File != "" {
		w, err := newWatcher(cfg, a.log)
		if err != nil {
			cancel()
			a.wg.Wait()
			_ = a.pool.Close(ctx)
			return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
		}
		a.watch = w
		a.recycles = make(chan recycleRequest, 1)
		a.checkOffline(ctx)
		a.wg.Go(func() { a.watchLoop(runCtx) })
		a.wg.Go(func() { a.recycleLoop(runCtx) })
	}
	if (cfg.StartAtBoot || opts.StartAtBoot) && a.offline.Load() == nil && !opts.Stopped {
		a.wg.Go(func() {
			// Stopped meanwhile (app_offline.htm, Close): not an error.
			if err := a.pool.Start(runCtx); err != nil && runCtx.Err() == nil && !errors.Is(err, upstream.ErrShuttingDown) {
				a.log.Error("start at boot", "err", err)
			}
		})
	}
	return a, nil
}

// spec maps the app settings onto what the supervisor needs.
func (a *App) spec(cfg *config.App) supervisor.Spec {
	applPath := a.opts.Path
	stdout := ""
	if cfg.StdoutLogEnabled {
		stdout = cfg.StdoutLogFile
	}
	return supervisor.Spec{
		Name:                a.name,
		Path:                cfg.ProcessPath,
		Args:                cfg.Args,
		Dir:                 cfg.Dir,
		Env:                 config.BuildEnv(poolEnv(a.opts.BaseEnv, a.opts.CleanEnvironment, a.opts.AppPool.Identity), cfg, applPath, a.opts.HTTPSPort),
		ApplPath:            applPath,
		ShutdownEvent:       shutdownEvent(cfg),
		Processes:           cmp.Or(int(a.processes.Load()), cfg.ProcessesPerApplication),
		StartupTimeout:      cfg.StartupTimeLimit,
		ShutdownTimeout:     cfg.ShutdownTimeLimit,
		DrainTimeout:        cfg.DrainTimeout,
		RapidFailsPerMinute: cfg.RapidFailsPerMinute,
		StdoutLog:           stdout,
		StdoutLogMaxSize:    cfg.StdoutLogMaxSize,
		StdoutLogMaxFiles:   cfg.StdoutLogMaxFiles,
		ReadinessProbe:      cfg.ReadinessProbe,
		H2C:                 cfg.H2C(),
		NotifyReady:         cfg.NotifyReady,
		SocketActivation:    cfg.SocketActivation,
		MaxQueued:           cfg.MaxQueuedRequests, // 0: no limit in both
		IdleTimeout:         cfg.IdleTimeout,
		Keeper:              a.opts.Keeper,
		AppPool:             a.opts.AppPool,
		Events:              a.opts.Events,
	}
}

// newHandler builds the proxy for one set of settings.
func (a *App) newHandler(cfg *config.App) *proxy.Handler {
	if cfg.GRPCWeb && !cfg.H2C() {
		a.log.Warn("grpcWeb needs protocol h2c; gRPC-Web requests go to the app untranslated", "file", cfg.File)
	}
	return &proxy.Handler{
		Backend:                         backend{a},
		RequestTimeout:                  cfg.RequestTimeout,
		DisableStartUpErrorPage:         cfg.DisableStartUpErrorPage,
		ErrorMode:                       cfg.ErrorMode,
		ForwardResponseConnectionHeader: cfg.ForwardResponseConnectionHeader,
		ForwardIdentity:                 cfg.ForwardWindowsAuthToken,
		RetryIdempotent:                 cfg.RetryIdempotentRequests,
		H2C:                             cfg.H2C(),
		GRPCWeb:                         cfg.GRPCWeb && cfg.H2C(),
		Log:                             a.log,
	}
}

// state is an app's settings in force: everything a request reads from
// its web.config, built together and replaced whole (App.cur) when
// web.config changes, so that a request never sees the stages of one
// version with the forwarder of another. It is immutable once built.
type state struct {
	cfg *config.App
	// chain is the front-door stages; nil when there are none.
	chain *pipeline.Chain
	// handler is the proxy to the app's processes.
	handler *proxy.Handler
	// noWebSocket is web.config's <webSocket enabled="false"/>.
	noWebSocket bool
	// stripBase is the virtual path that forwarded requests lose (the site
	// config's stripPathBase); "" when they keep it.
	stripBase string
	// upstreams are the forwarders to the other servers URL Rewrite may
	// send requests to (pipeline.Request.Upstream), by "host:port".
	upstreams map[string]*proxy.Handler
}

// newState builds the settings in force for cfg.
func (a *App) newState(cfg *config.App) (*state, error) {
	chain, err := a.buildChain(cfg)
	if err != nil {
		return nil, err
	}
	st := &state{cfg: cfg, chain: chain, handler: a.newHandler(cfg), noWebSocket: cfg.WebSocketDisabled}
	for _, u := range a.opts.ProxyUpstreams {
		if st.upstreams == nil {
			st.upstreams = make(map[string]*proxy.Handler, len(a.opts.ProxyUpstreams))
		}
		st.upstreams[u] = &proxy.Handler{Backend: otherServer(u), RequestTimeout: cfg.RequestTimeout, Log: a.log.With("upstream", u)}
	}
	if a.opts.StripPathBase && a.opts.Path != "/" {
		st.stripBase = a.opts.Path
	}
	return st, nil
}

// Chain returns the app's stages, nil when it has none.
func (s *state) Chain() *pipeline.Chain { return s.chain }

// Forward forwards r, as the stages left it, to the app, starting it if
// needed (see proxy.Handler.Forward): the way every request of the front
// door reaches it. With <webSocket enabled="false"/> an Upgrade request
// goes as a plain one; with stripPathBase the app gets the path below its
// base.
func (s *state) Forward(ctx context.Context, w http.ResponseWriter, r *pipeline.Request, body io.Reader) {
	if s.noWebSocket && r.Header != nil && r.Header.Get("Upgrade") != "" {
		r.Header.Del("Upgrade") // the forwarder removes Connection and what it names
	}
	if r.Upstream != "" {
		if h := s.upstreams[r.Upstream]; h != nil {
			h.Forward(ctx, w, r, body)
			return
		}
		// The rules were compiled with the upstreams in force, so this is
		// a request judged by an earlier configuration.
		pipeline.WriteResult(w, r, pipeline.Refuse("rewrite", http.StatusInternalServerError, 52,
			"rewrite to "+r.Upstream+", which proxyUpstreams no longer lists"), nil)
		return
	}
	if s.stripBase != "" {
		r = stripRequest(r, s.stripBase)
	}
	s.handler.Forward(ctx, w, r, body)
}

// closeIdle closes the idle connections to the app's processes and to the
// other servers.
func (s *state) closeIdle() {
	s.handler.CloseIdleConnections()
	for _, h := range s.upstreams {
		h.CloseIdleConnections()
	}
}

// otherServer is a proxy.Backend for a server other than the app's
// processes ("host:port"), which URL Rewrite sends requests to: no process
// to start, no pairing token.
type otherServer string

func (o otherServer) Acquire(context.Context) (*upstream.Lease, error) {
	return upstream.NewLease(string(o), "", 0, nil, nil), nil
}

// Current returns the app's settings in force, for one request: its stages
// and its forwarder, of the same web.config (see pipeline.App). It does not
// allocate.
func (a *App) Current() pipeline.App { return a.cur.Load() }

// Config returns the settings in force. The caller must not modify them.
func (a *App) Config() *config.App { return a.cur.Load().cfg }

// Pool returns the app's process pool, for status and tests.
func (a *App) Pool() *supervisor.Pool { return a.pool }

// Recycle replaces the app's processes without failing a request: new ones
// start, take over once ready, and the old ones finish what they have.
func (a *App) Recycle(ctx context.Context) error {
	if a.offline.Load() != nil {
		return nil // nothing runs while offline; the next start uses the current settings
	}
	return a.pool.Recycle(ctx, nil)
}

// Close stops the watchers and the app's processes (graceful, within
// shutdownTimeLimit, then killed) and returns when they are gone. It is safe
// to call more than once.
func (a *App) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	if a.watch != nil {
		a.watch.close()
	}
	a.wg.Wait()
	err := a.pool.Close(ctx)
	a.cur.Load().closeIdle()
	return err
}

// backend is the proxy's view of the app: leases from the pool, unless
// app_offline.htm says the app is down for a deploy.
type backend struct{ a *App }

func (b backend) Acquire(ctx context.Context) (*upstream.Lease, error) {
	if body := b.a.offline.Load(); body != nil {
		return nil, &upstream.OfflineError{Body: *body}
	}
	if h := b.a.testHookAcquire; h != nil {
		h()
	}
	l, err := b.a.pool.Acquire(ctx)
	// app_offline.htm may have appeared while this request waited or while
	// its process started: the file wins. If this Acquire started a process
	// after the watch loop stopped the app, that process must be stopped
	// again, whether or not this request still waited for it (its ctx may
	// have ended meanwhile), so the loop is asked to stop the app in every
	// case; stopping a stopped pool costs nothing.
	if body := b.a.offline.Load(); body != nil {
		if err == nil {
			l.Release()
		}
		b.a.watch.kickStop()
		return nil, &upstream.OfflineError{Body: *body}
	}
	return l, err
}

// inheritProtocol gives cfg the site config's protocol for the app when
// web.config does not set one.
func inheritProtocol(cfg *config.App, site string) {
	if site != "" && !cfg.Set["protocol"] {
		cfg.Protocol = site
	}
}
