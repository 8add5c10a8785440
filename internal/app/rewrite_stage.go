package app

import (
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/iis"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// newRewriteStage compiles cfg's <rewrite> and <httpRedirect> for the app
// at appPath into its URL Rewrite stage; nil when it has neither. This is
// where a web.config's rules are checked beyond their syntax (patterns,
// server variables, functions and maps): an error names the file and line
// of the element concerned.
func newRewriteStage(cfg *config.App, appPath string, upstreams []string) (*rewrite.Stage, error) {
	rules, err := rewrite.Compile(cfg.Rewrite, rewrite.Options{AppPath: appPath, Dir: cfg.Dir, Upstreams: upstreams})
	if err != nil {
		return nil, err
	}
	redirect, err := rewrite.CompileRedirect(cfg.HTTPRedirects, appPath)
	if err != nil {
		return nil, err
	}
	return rewrite.NewStage(rules, redirect), nil
}

// rewriteStage compiles cfg's URL Rewrite rules and HTTP redirects into
// the app's URL Rewrite stage, with that of each <location path> that has
// its own <rewrite> (the app's rules followed by the location's); nil when
// there are none.
func rewriteStage(cfg *config.App, appPath string, upstreams []string) (pipeline.Stage, error) {
	compile := func(rw *config.Rewrite) (pipeline.Stage, error) {
		c := *cfg
		c.Rewrite = rw
		s, err := newRewriteStage(&c, appPath, upstreams)
		if s == nil || err != nil {
			return nil, err
		}
		return s, nil
	}
	root, err := compile(cfg.Rewrite)
	if err != nil {
		return nil, err
	}
	var firstErr error
	sc := perLocation(cfg, root, func(l *config.Location) (pipeline.Stage, bool) {
		if l.Rewrite == nil {
			return nil, false
		}
		s, err := compile(l.Rewrite)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return s, true
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if sc != nil {
		return iis.ScopedStage{Scoped: sc}, nil
	}
	return root, nil
}

// newOutboundStage compiles cfg's outbound rules on response headers for
// the app at appPath into its outbound URL Rewrite stage; nil when it has
// none. Errors name the file and line.
func newOutboundStage(cfg *config.App, appPath string, log *slog.Logger) (*rewrite.OutStage, error) {
	rules, err := rewrite.CompileOutbound(cfg.Rewrite, rewrite.Options{AppPath: appPath, Dir: cfg.Dir})
	if err != nil {
		return nil, err
	}
	return rewrite.NewOutStage(rules, log), nil
}

// CheckRules compiles cfg's URL Rewrite rules (inbound and outbound) and
// HTTP redirects as Open does, without opening anything (gatehouse check),
// with the other servers the site config allows rewrites to (proxyUpstreams).
// The error names the file and line.
func CheckRules(cfg *config.App, upstreams []string) error {
	if _, err := rewriteStage(cfg, "/", upstreams); err != nil {
		return err
	}
	_, err := newOutboundStage(cfg, "/", nil)
	return err
}
