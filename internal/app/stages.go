package app

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/iis"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// buildChain builds the app's front-door stages from its settings, in the
// order IIS runs its modules: IP and domain restrictions, request
// filtering, URL Rewrite and HTTP redirection, authentication and
// authorization on the way in; removeServerHeader, custom headers, URL
// Rewrite's outbound rules and compression on the way out. It returns nil when nothing is configured, so such an app's
// requests pay nothing for the pipeline. It logs the web.config elements
// that are not carried out.
func (a *App) buildChain(cfg *config.App) (*pipeline.Chain, error) {
	for _, u := range cfg.Unsupported {
		a.log.Warn("web.config element not carried out", "element", u)
	}
	c := pipeline.Chain{Observers: append([]pipeline.Observer(nil), a.opts.Observers...)}
	if s := ipSecurity(cfg); s != nil {
		c.In = append(c.In, s)
	}
	if s, counters := a.dynamicIPSecurity(cfg); s != nil {
		c.In = append(c.In, s)
		for _, n := range counters { // count ended requests out
			c.EndObservers = append(c.EndObservers, n)
			c.Observers = append(c.Observers, n) // those that ended in a panic
		}
	}
	filtering := a.filtering(cfg.RequestFiltering)
	rf := a.requestFiltering(cfg)
	if rf != nil {
		c.In = append(c.In, rf)
	}
	c.Limits = iis.Limits(cfg.RequestFiltering)
	if filtering != nil && filtering.RemoveServerHeader {
		c.Out = append(c.Out, iis.RemoveServerHeader{})
	}
	rw, err := rewriteStage(cfg, a.opts.Path, a.opts.ProxyUpstreams)
	if err != nil {
		return nil, err
	}
	switch {
	case rw != nil && rf != nil:
		c.In = append(c.In, refiltered{rewrite: rw, filter: rf})
	case rw != nil:
		c.In = append(c.In, rw)
	}
	// Authentication and authorization see the rewritten path, as in IIS.
	if pol := auth.NewPolicy(cfg.SiteSchemes, cfg.Security); !pol.Trivial() {
		st, err := auth.NewStage(pol, a.auth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		c.In = append(c.In, st)
		c.Out = append(c.Out, st) // challenges on the app's 401s
	}
	if s := customHeaders(cfg); s != nil {
		c.Out = append(c.Out, s)
	}
	// Outbound rules see the custom headers, and compression sees what
	// they leave.
	out, err := newOutboundStage(cfg, a.opts.Path, a.log)
	if err != nil {
		return nil, err
	}
	if out != nil {
		c.Out = append(c.Out, out)
	}
	if s := a.compression(cfg); s != nil {
		c.Out = append(c.Out, s)
	}
	if err := a.checkExecuteURLs(cfg); err != nil {
		return nil, err
	}
	c.Errors = a.errorPages(cfg)
	if len(c.In) == 0 && len(c.Out) == 0 && len(c.Observers) == 0 && c.Limits == nil && c.Errors == nil {
		return nil, nil
	}
	return &c, nil
}

// checkExecuteURLs refuses a custom error page (<httpErrors>) whose
// responseMode="ExecuteURL" path is not one of the app's: the front door
// runs it again on the same app, as IIS runs it in the same application
// pool.
func (a *App) checkExecuteURLs(cfg *config.App) error {
	all := []*config.HTTPErrors{cfg.HTTPErrors}
	for _, l := range cfg.Locations {
		all = append(all, l.HTTPErrors)
	}
	for _, he := range all {
		if he == nil {
			continue
		}
		for _, pg := range append(he.Pages, he.Default) {
			if pg.Mode != "ExecuteURL" || pg.Path == "" {
				continue
			}
			p, _, _ := strings.Cut(pg.Path, "?")
			if !underAppPath(p, a.opts.Path) {
				return fmt.Errorf("%s:%d: <httpErrors>: ExecuteURL path %q is not under this app's path %s; an error page runs in the same app", cfg.File, pg.Line, pg.Path, a.opts.Path)
			}
		}
	}
	return nil
}

// errorPages returns the app's custom error pages (<httpErrors>), with
// those of each <location path> that has its own; nil when no response is
// replaced.
func (a *App) errorPages(cfg *config.App) pipeline.ErrorPages {
	pages := func(he *config.HTTPErrors, mode config.ErrorMode) pipeline.ErrorPages {
		if e := iis.NewHTTPErrors(he, mode, cfg.Dir, proxy.FromMachine, a.log); e != nil {
			return e
		}
		return nil
	}
	root := pages(cfg.HTTPErrors, cfg.ErrorMode)
	if sc := perLocation(cfg, root, func(l *config.Location) (pipeline.ErrorPages, bool) {
		// A location without its own <httpErrors> keeps the app's pointer.
		return pages(l.HTTPErrors, l.ErrorMode), l.HTTPErrors != cfg.HTTPErrors || l.ErrorMode != cfg.ErrorMode
	}); sc != nil {
		return iis.ScopedErrors{Scoped: sc}
	}
	return root
}

// dynamicIPSecurity returns the app's Dynamic IP Restrictions stage, with
// that of each <location path> whose settings differ from the app's (it
// counts the requests under its path on its own), and the stages, which
// must also be told of ended requests to count them out; nil when no
// client is limited.
func (a *App) dynamicIPSecurity(cfg *config.App) (pipeline.Stage, []*iis.DynamicIPSecurity) {
	var counters []*iis.DynamicIPSecurity
	stage := func(d *config.DynamicIPSecurity) pipeline.Stage {
		if s := iis.NewDynamicIPSecurity(d, a.log); s != nil {
			counters = append(counters, s)
			return s
		}
		return nil
	}
	root := stage(cfg.DynamicIPSecurity)
	if sc := perLocation(cfg, root, func(l *config.Location) (pipeline.Stage, bool) {
		d := l.DynamicIPSecurity
		if d == nil || cfg.DynamicIPSecurity != nil && *d == *cfg.DynamicIPSecurity {
			return nil, false // the app's, counted by its stage
		}
		return stage(d), true
	}); sc != nil {
		return iis.ScopedStage{Scoped: sc}, counters
	}
	return root, counters
}

// underAppPath reports whether URL path p lies in the application at
// virtual path app ("/" or "/api"), compared without case as IIS does.
func underAppPath(p, app string) bool {
	if app == "/" || app == "" {
		return true
	}
	return len(p) >= len(app) && strings.EqualFold(p[:len(app)], app) && (len(p) == len(app) || p[len(app)] == '/')
}

// filtering returns the request filtering of a web.config section (nil:
// none): with IIS's server-level lists unless the site config turns them
// off.
func (a *App) filtering(rf *config.RequestFiltering) *config.RequestFiltering {
	if a.opts.NoServerFiltering {
		return rf
	}
	return iis.WithServerDefaults(rf)
}

// requestFiltering returns the app's request-filtering stage, with that of
// each <location path> that has its own; nil when nothing is filtered.
func (a *App) requestFiltering(cfg *config.App) pipeline.Stage {
	stage := func(rf *config.RequestFiltering) pipeline.Stage {
		if s := iis.NewRequestFiltering(a.filtering(rf)); s != nil {
			return s
		}
		return nil
	}
	root := stage(cfg.RequestFiltering)
	if sc := perLocation(cfg, root, func(l *config.Location) (pipeline.Stage, bool) {
		return stage(l.RequestFiltering), l.RequestFiltering != nil
	}); sc != nil {
		return iis.ScopedStage{Scoped: sc}
	}
	return root
}

// customHeaders returns the app's custom-headers stage, with that of each
// <location path> that has its own; nil when no header is added.
func customHeaders(cfg *config.App) pipeline.OutStage {
	stage := func(ch *config.CustomHeaders) pipeline.OutStage {
		if s := iis.NewCustomHeaders(ch); s != nil {
			return s
		}
		return nil
	}
	root := stage(cfg.CustomHeaders)
	if sc := perLocation(cfg, root, func(l *config.Location) (pipeline.OutStage, bool) {
		return stage(l.CustomHeaders), l.CustomHeaders != nil
	}); sc != nil {
		return iis.ScopedOut{Scoped: sc}
	}
	return root
}

// perLocation returns the picker of root and the stages of the <location
// path> elements that have their own section (of reports it), nil when
// none has.
func perLocation[S comparable](cfg *config.App, root S, of func(*config.Location) (S, bool)) *iis.Scoped[S] {
	var paths []string
	var stages []S
	for i := range cfg.Locations {
		if st, ok := of(&cfg.Locations[i]); ok {
			paths, stages = append(paths, cfg.Locations[i].Path), append(stages, st)
		}
	}
	if len(paths) == 0 {
		return nil
	}
	return iis.NewScoped(root, paths, stages)
}

// refiltered is URL Rewrite followed, when it changed the URL, by request
// filtering of the new URL, as IIS filters a rewritten request again:
// "/web.config.aspx" rewritten to "/web.config" is denied as
// "/web.config" is. A URL rewritten into another application is left to
// that application's stages.
type refiltered struct{ rewrite, filter pipeline.Stage }

func (s refiltered) Serve(r *pipeline.Request) *pipeline.Result {
	path, query := r.Path, r.RawQuery
	if res := s.rewrite.Serve(r); res != nil {
		return res
	}
	if r.Path == path && r.RawQuery == query || r.Router != nil && r.Router.Route(r.Path) != r.AppPath {
		return nil
	}
	return s.filter.Serve(r)
}

// compresses reports whether responses are compressed under uc (the
// app's or a location's <urlCompression>): as its doDynamicCompression
// says, else (nil) as the site config's compression.dynamic says.
func (a *App) compresses(uc *config.URLCompression) bool {
	if uc != nil {
		return uc.DoDynamicCompression
	}
	return a.opts.Compression.Dynamic
}

// compression returns the app's compression stage, also where a <location
// path> turns it on or off; nil when nothing is compressed.
func (a *App) compression(cfg *config.App) pipeline.OutStage {
	var comp pipeline.OutStage
	stage := func(uc *config.URLCompression) pipeline.OutStage {
		if !a.compresses(uc) {
			return nil
		}
		if comp == nil {
			comp = iis.NewCompression(a.opts.Compression.WithDefaults())
		}
		return comp
	}
	root := stage(cfg.URLCompression)
	sc := perLocation(cfg, root, func(l *config.Location) (pipeline.OutStage, bool) {
		return stage(l.URLCompression), l.URLCompression != nil
	})
	if sc == nil || comp == nil {
		return root
	}
	return iis.ScopedOut{Scoped: sc}
}

// ipSecurity returns the app's IP-restrictions stage, with that of each
// <location path> that has its own; nil when every address is let in.
func ipSecurity(cfg *config.App) pipeline.Stage {
	stage := func(ips *config.IPSecurity) pipeline.Stage {
		if s := iis.NewIPSecurity(ips); s != nil {
			return s
		}
		return nil
	}
	root := stage(cfg.IPSecurity)
	if sc := perLocation(cfg, root, func(l *config.Location) (pipeline.Stage, bool) {
		return stage(l.IPSecurity), l.IPSecurity != nil
	}); sc != nil {
		return iis.ScopedStage{Scoped: sc}
	}
	return root
}

// Chain returns the app's current front-door stages (nil: none), those of
// the settings Current returns.
func (a *App) Chain() *pipeline.Chain { return a.cur.Load().chain }
