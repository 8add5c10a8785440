// Package frontend is Gatehouse's front door, the part HTTP.sys plays under
// IIS: it binds the sites' listeners (HTTP/1.1, HTTP/2 over TLS and
// cleartext, HTTP/3 over QUIC), terminates TLS with SNI and optional client
// certificates, applies the request limits, routes each request by binding,
// Host header and virtual path to an App, and writes the sites' access logs.
//
// Apps are opened through an OpenFunc; the package sees of each only its
// settings in force (pipeline.App: its stages and its forwarder), taken
// once per request. Every request, from every protocol, reaches the app
// through that forwarder as a pipeline.Request: the full path (virtual
// path included, as the stages left it), the TLS state with the peer
// certificates.
package frontend

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/quic-go/quic-go/http3"
)

// App is one mounted application (a web.config folder behind a virtual
// path). Current returns its settings in force (its stages and its
// forwarder) as one snapshot; the front door calls it once per request
// routed to the app, so it must be cheap (an atomic load), and uses that
// snapshot for the whole request. Close is called once, after the app
// stopped receiving requests from a new config (reload) or after the
// listeners drained (stop).
type App interface {
	Current() pipeline.App
	Close(ctx context.Context) error
}

// AppSpec says which app to open.
type AppSpec struct {
	Site string
	// Path is the virtual path, "/" or "/api" (ASPNETCORE_APPL_PATH).
	Path string
	// Dir is the absolute folder holding web.config.
	Dir string
	// HTTPSPort is the port of the site's https bindings as configured, 0 if
	// it has none or several different ones (ASPNETCORE_ANCM_HTTPS_PORT).
	HTTPSPort int
	// Pool is the application entry's pool settings (user, recycling,
	// limits). A reload that changes them opens the app anew.
	Pool siteconfig.Pool
	// StripPathBase is the application's stripPathBase.
	StripPathBase bool
	// Protocol is the application's protocol ("" = its web.config's).
	Protocol string
	// Compression is the config's dynamic compression settings.
	Compression siteconfig.Compression
	// RequestFiltering is the config's server-level request filtering.
	RequestFiltering siteconfig.RequestFiltering
	// ProxyUpstreams are the other servers URL Rewrite may send requests
	// to (siteconfig.Config.Upstreams).
	ProxyUpstreams []string
	// Auth is the site's authentication settings.
	Auth siteconfig.Authentication
}

// OpenFunc opens an app. It should not start the app's process (ANCM starts
// it on the first request); an error makes New or Reload fail.
type OpenFunc func(ctx context.Context, spec AppSpec) (App, error)

// GlobalRulesFunc reads and compiles the URL Rewrite global rules of the
// file a configuration names (siteconfig.Config.GlobalRules) into the stage
// that runs before any app's stages; nil when the file has no rules. New
// and every Reload call it; an error makes them fail.
type GlobalRulesFunc func(file string) (pipeline.Stage, error)

// Option sets up a Server in New.
type Option func(*Server)

// WithGlobalRules has the server build the global rules with f. Without
// it a configuration that names global rules is refused.
func WithGlobalRules(f GlobalRulesFunc) Option { return func(s *Server) { s.buildGlobal = f } }

// ErrClosed is returned by Run and Reload once the server has stopped.
var ErrClosed = errors.New("frontend: server closed")

// Software is written into the W3C access log's #Software directive.
const Software = "Gatehouse"

// appKey identifies an open app across reloads; pool is the JSON of its
// siteconfig.Pool and opts the other site settings the app is built with,
// so that changing them opens the app anew.
type appKey struct{ site, path, dir, pool, opts string }

type logKey struct{ path, format, fields string }

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// Server is the front door for one configuration at a time. Create it with
// New; Run serves, Reload swaps the configuration while serving.
type Server struct {
	log  *slog.Logger
	open OpenFunc
	// buildGlobal builds the global rules (WithGlobalRules); nil for none.
	// Set by New, read-only afterwards.
	buildGlobal GlobalRulesFunc
	conns       connCounter
	hijacked    hijackSet
	// streams counts the HTTP/2 and HTTP/3 requests in flight (enterStream).
	streams atomic.Int64

	mu          sync.Mutex // protects the fields below and serializes Run/Reload
	state       int
	cfg         *siteconfig.Config
	apps        map[appKey]App
	logs        map[logKey]*accessLog
	sites       map[string]*siteRoute
	sni         map[string]*hostTable[*tls.Config]
	acmeSet     *acmeSettings // automatic HTTPS of cfg, nil for none
	listeners   map[string]*listener
	watcher     *fsnotify.Watcher
	watchedDirs map[string]bool
	tlsWatched  map[string]bool

	wg sync.WaitGroup // acceptors, http servers, drains, the cert watcher

	listening chan struct{}     // closed by Run once every listener is bound
	inherited []inheritedSocket // sockets handed over by Inherit, not yet used; guarded by mu
	// tlsObserver is told about TLS handshakes (OnTLSHandshake); set
	// before Run, read-only afterwards.
	tlsObserver func(listener string, err error)
	// acme obtains and renews the certificates of the bindings with
	// certificate: auto; set by New.
	acme *acmeManager
	// prebound holds sockets bound before New (WithPrebound); nil for
	// none. Set by New, read-only afterwards.
	prebound *Prebound
}

// New validates cfg, opens every app with open and the access logs, and
// reads the certificates. It does not listen; Run does. On error, the apps
// opened so far are closed again. log must not be nil.
func New(cfg *siteconfig.Config, open OpenFunc, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate config: %w", err)
	}
	s := &Server{log: log, open: open, watchedDirs: map[string]bool{}, listening: make(chan struct{}), acme: newACMEManager(log)}
	for _, o := range opts {
		o(s)
	}
	s.hijacked.logger = log
	p, err := s.prepare(context.Background(), cfg)
	if err != nil {
		p.rollback(context.Background())
		return nil, err
	}
	s.commit(p)
	return s, nil
}

// plan is a prepared configuration: apps and logs open, certificates read.
type plan struct {
	cfg     *siteconfig.Config
	apps    map[appKey]App
	logs    map[logKey]*accessLog
	sites   map[string]*siteRoute
	sni     map[string]*hostTable[*tls.Config]
	acme    *acmeSettings // nil without a certificate: auto binding
	newApps []App
	newLogs []*accessLog
}

// prepare opens what cfg needs that the current config does not have.
// Called with s.mu held (or before s is shared).
func (s *Server) prepare(ctx context.Context, cfg *siteconfig.Config) (*plan, error) {
	p := &plan{cfg: cfg, apps: map[appKey]App{}, logs: map[logKey]*accessLog{}, sites: map[string]*siteRoute{}}
	lim := limitsOf(cfg)
	global, err := s.globalRules(cfg)
	if err != nil {
		return p, err
	}
	for i := range cfg.Sites {
		site := &cfg.Sites[i]
		sr := &siteRoute{name: site.Name, redirect: site.RedirectToHTTPS, httpsPort: site.HTTPSPort(), lim: lim, global: global}
		if al := site.AccessLog; al.Path != "" {
			k := logKey{al.Path, al.Format, al.Fields}
			l := p.logs[k]
			if l == nil {
				l = s.logs[k]
			}
			if l == nil {
				var err error
				if l, err = openAccessLog(al.Path, al.Format, al.Fields, Software, s.log); err != nil {
					return p, fmt.Errorf("site %s: %w", site.Name, err)
				}
				p.newLogs = append(p.newLogs, l)
			}
			p.logs[k] = l
			sr.observers = append(sr.observers, l)
		}
		for _, a := range site.Applications {
			spec := AppSpec{Site: site.Name, Path: a.Path, Dir: a.Dir, HTTPSPort: site.HTTPSPort(), Pool: a.Pool,
				StripPathBase: a.StripPathBase, Protocol: a.Protocol, Compression: cfg.Compression, RequestFiltering: cfg.RequestFiltering, ProxyUpstreams: cfg.Upstreams(), Auth: site.Authentication}
			k := appKey{site.Name, a.Path, a.Dir, poolKey(a.Pool), fmt.Sprint(spec.StripPathBase, spec.Protocol, spec.Compression, spec.RequestFiltering, spec.ProxyUpstreams, authKey(spec.Auth))}
			app := s.apps[k]
			if app == nil {
				var err error
				if app, err = s.open(ctx, spec); err != nil {
					return p, fmt.Errorf("open app %s%s: %w", site.Name, a.Path, err)
				}
				p.newApps = append(p.newApps, app)
			}
			p.apps[k] = app
			sr.apps = append(sr.apps, appRoute{path: a.Path, dir: a.Dir, app: app})
		}
		sortApps(sr.apps)
		p.sites[site.Name] = sr
	}
	sni, err := buildSNI(cfg, s.acme.getCertificate)
	if err != nil {
		return p, err
	}
	p.sni = sni
	if p.acme, err = prepareACME(cfg); err != nil {
		return p, err
	}
	return p, nil
}

// rollback closes what prepare opened; p may be partial.
func (p *plan) rollback(ctx context.Context) {
	for _, a := range p.newApps {
		_ = a.Close(ctx)
	}
	for _, l := range p.newLogs {
		_ = l.close()
	}
}

// commit makes p the current config. Called with s.mu held (or before s is
// shared). Listeners are updated separately by publish.
func (s *Server) commit(p *plan) {
	s.cfg, s.apps, s.logs, s.sites, s.sni, s.acmeSet = p.cfg, p.apps, p.logs, p.sites, p.sni, p.acme
	maxConns := effectiveMaxConnections(p.cfg.Limits.MaxConnections)
	s.conns.max.Store(int64(maxConns))
	s.conns.perClient.Store(int64(effectivePerClient(p.cfg.Limits.MaxConnectionsPerClient, maxConns)))
	s.hijacked.idle.Store(int64(max(p.cfg.Timeouts.WebSocket, 0)))
}

// settingsFor returns the server settings of a listener with scheme.
func settingsFor(cfg *siteconfig.Config, scheme string) serverSettings {
	// The handler enforces MaxRequestBytes exactly and logs the 431; the
	// servers get twice as much as a hard cap so that their own refusal
	// (unlogged, before any handler runs) only hits grossly oversized heads.
	maxHeader := 2 * cfg.Limits.MaxRequestBytes
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	return serverSettings{
		readHeader:  max(cfg.Timeouts.Header, 0),
		idle:        max(cfg.Timeouts.Idle, 0),
		send:        max(cfg.Timeouts.Send, 0),
		maxHeader:   maxHeader,
		http2:       !cfg.Protocols.DisableHTTP2,
		h2c:         cfg.Protocols.H2C,
		http3:       cfg.Protocols.HTTP3 && scheme == "https",
		shutdownDur: cfg.ShutdownTimeout,
	}
}

// listenerBindings returns the first binding of every listener key in cfg.
func listenerBindings(cfg *siteconfig.Config) map[string]*siteconfig.Binding {
	out := map[string]*siteconfig.Binding{}
	for i := range cfg.Sites {
		for j := range cfg.Sites[i].Bindings {
			b := &cfg.Sites[i].Bindings[j]
			if out[b.ListenerKey()] == nil {
				out[b.ListenerKey()] = b
			}
		}
	}
	return out
}

// bind opens the sockets of one listener.
func (s *Server) bind(b *siteconfig.Binding, set serverSettings) (*listener, error) {
	raw, err := s.listenTCP(b)
	if err != nil {
		return nil, err
	}
	if b.Scheme == "http" {
		raw = withWait(raw) // for acceptRawLoop
	}
	l := &listener{key: b.ListenerKey(), scheme: b.Scheme, srv: s, raw: raw, set: set}
	l.tlsBase = l.baseTLSIfHTTPS()
	if set.http3 {
		if err := l.bindUDP(); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("listen udp %s (binding %s): %w", b.ListenerKey(), b.Name, err)
		}
	}
	return l, nil
}

// bindUDP opens the HTTP/3 socket on the TCP listener's address and port;
// with a configured port 0 it falls back to any free UDP port.
func (l *listener) bindUDP() error {
	ta := l.raw.Addr().(*net.TCPAddr)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP, Port: ta.Port})
	if err != nil {
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP})
		if err != nil {
			return err
		}
	}
	l.udp = udp
	return nil
}

// start runs the listener's acceptor, first generation and HTTP/3 server.
// Called with s.mu held, after publish stored its routes.
func (s *Server) start(l *listener) {
	g := l.newGeneration(l.set)
	l.cur.Store(g)
	s.wg.Go(func() { l.serve(g) })
	s.wg.Go(func() { l.acceptLoop(s.log) })
	if l.udp != nil {
		s.startH3(l, l.set)
	}
}

// startH3 serves HTTP/3 on l.udp. Called with s.mu held.
func (s *Server) startH3(l *listener, set serverSettings) {
	send := set.send
	l.h3 = &http3.Server{
		// quic-go's streams take a write deadline: each write of an
		// HTTP/3 answer is bounded by the send timeout.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serveHTTP3(l, w, r, send)
		}),
		TLSConfig:      l.baseTLS(),
		MaxHeaderBytes: set.maxHeader,
		IdleTimeout:    set.idle,
		Logger:         s.log,
	}
	h3, udp := l.h3, l.udp
	s.wg.Go(func() { l.serveH3(h3, udp) })
}

// publish stores the routing tables of the current config into every
// listener. Called with s.mu held.
func (s *Server) publish() {
	// Redirects go to the port the https binding really got (port 0 in tests).
	for i := range s.cfg.Sites {
		site := &s.cfg.Sites[i]
		sr := s.sites[site.Name]
		if !sr.redirect {
			continue
		}
		for _, b := range site.Bindings {
			if l := s.listeners[b.ListenerKey()]; b.Scheme == "https" && l != nil {
				sr.httpsPort = l.raw.Addr().(*net.TCPAddr).Port
				break
			}
		}
	}
	tabs := map[string]*lnRoutes{}
	for i := range s.cfg.Sites {
		site := &s.cfg.Sites[i]
		for _, b := range site.Bindings {
			t := tabs[b.ListenerKey()]
			if t == nil {
				t = &lnRoutes{trusted: s.cfg.TrustedProxyPrefixes()}
				tabs[b.ListenerKey()] = t
			}
			t.hosts.add(b.Host, s.sites[site.Name])
		}
	}
	for key, l := range s.listeners {
		t := tabs[key]
		if t == nil {
			continue // being retired
		}
		if l.udp != nil {
			t.altSvc = `h3=":` + strconv.Itoa(l.udp.LocalAddr().(*net.UDPAddr).Port) + `"; ma=86400`
		}
		l.routes.Store(t)
		if err := setDeferAccept(l.raw, s.cfg.Timeouts.DeferAccept); err != nil {
			s.log.Warn("a silent connection is handed over at once", "listener", key, "err", err)
		}
		if sni := s.sni[key]; sni != nil {
			l.sni.Store(sni)
		}
	}
}

// Run binds every listener, serves until ctx ends, then shuts down in order:
// stop accepting; http.Server.Shutdown (and HTTP/3 GOAWAY) with a budget of
// ShutdownTimeout, after which remaining connections are closed; close
// hijacked (WebSocket) connections; close every app; close the access logs.
// It returns nil on a clean stop, the bind error if a listener cannot be
// bound (apps are closed then too), or the apps' Close errors. Run may be
// called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateNew {
		s.mu.Unlock()
		return fmt.Errorf("run: %w", ErrClosed)
	}
	s.state = stateRunning
	s.listeners = map[string]*listener{}
	for key, b := range listenerBindings(s.cfg) {
		l, err := s.bind(b, settingsFor(s.cfg, b.Scheme))
		if err != nil {
			s.mu.Unlock()
			return errors.Join(err, s.shutdown())
		}
		s.listeners[key] = l
	}
	s.publish()
	for _, l := range s.listeners {
		s.start(l)
	}
	if w, err := fsnotify.NewWatcher(); err != nil {
		s.log.Warn("certificate files are not watched; reload to re-read them", "err", err)
	} else {
		s.watcher = w
	}
	s.updateWatches()
	stop := make(chan struct{})
	if s.watcher != nil {
		w := s.watcher
		s.wg.Go(func() { s.watchCerts(w, stop) })
	}
	for key, l := range s.listeners {
		s.log.Info("listening", "listener", key, "addr", l.raw.Addr().String(), "http3", l.udp != nil)
	}
	// Once the listeners serve: they answer the ACME challenges.
	s.acme.apply(s.acmeSet, s.acmeListenersOf(s.cfg))
	for _, in := range s.inherited {
		s.log.Warn("inherited socket matches no binding; kept for a reload", "name", in.name, "addr", in.ln.Addr().String())
	}
	close(s.listening)
	s.mu.Unlock()

	<-ctx.Done()
	close(stop)
	return s.shutdown()
}

// shutdown implements the stop sequence of Run.
func (s *Server) shutdown() error {
	s.mu.Lock()
	s.state = stateStopped
	s.closeInherited()
	ls, apps, logs, budget := s.listeners, s.apps, s.logs, s.cfg.ShutdownTimeout
	w := s.watcher
	s.mu.Unlock()

	// 1. Stop accepting: the sockets close, queued clients are refused.
	// ACME work in flight is cancelled: no challenge can be answered now.
	for _, l := range ls {
		l.closed.Store(true)
		_ = l.raw.Close()
	}
	s.acme.stop()
	// 2. Let in-flight requests finish within the budget.
	ctx, cancel := context.WithTimeout(context.Background(), max(budget, 0))
	var wg sync.WaitGroup
	for _, l := range ls {
		g := l.cur.Load()
		if g != nil {
			wg.Go(func() { g.shutdown(ctx) })
		}
		wg.Go(func() { l.lean.drain(ctx) })
		if l.h3 != nil {
			wg.Go(func() {
				_ = l.h3.Shutdown(ctx)
				_ = l.udp.Close()
			})
		} else if l.udp != nil {
			_ = l.udp.Close()
		}
	}
	wg.Wait()
	cancel()
	// 3. Hijacked connections are not tracked by http.Server.
	if n := s.hijacked.closeAll(); n > 0 {
		s.log.Info("closed hijacked connections", "count", n)
	}
	if w != nil {
		_ = w.Close()
	}
	s.wg.Wait()
	// 4. Apps last: nothing can reach them now.
	actx, acancel := context.WithTimeout(context.Background(), max(budget, 0))
	defer acancel()
	var errs []error
	for k, a := range apps {
		if err := a.Close(actx); err != nil {
			errs = append(errs, fmt.Errorf("close app %s%s: %w", k.site, k.path, err))
		}
	}
	for _, l := range logs {
		if err := l.close(); err != nil {
			errs = append(errs, fmt.Errorf("close access log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Addrs returns the bound address of every binding by binding name. Empty
// before Run has bound the listeners. HTTP/3 uses the UDP port announced in
// Alt-Svc, which equals the TCP port unless the configured port was 0.
func (s *Server) Addrs() map[string]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]net.Addr{}
	for i := range s.cfg.Sites {
		for _, b := range s.cfg.Sites[i].Bindings {
			if l := s.listeners[b.ListenerKey()]; l != nil {
				out[b.Name] = l.raw.Addr()
			}
		}
	}
	return out
}

// poolKey is the identity of pool settings in appKey.
func poolKey(p siteconfig.Pool) string {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprint(err) // cannot happen: the type marshals
	}
	return string(b)
}

// authKey is a site's authentication settings as a string, so a reload
// that changes them opens the site's apps anew.
func authKey(a siteconfig.Authentication) string {
	anon := a.Anonymous == nil || *a.Anonymous
	a.Anonymous = nil
	return fmt.Sprintf("%v %+v", anon, a)
}
