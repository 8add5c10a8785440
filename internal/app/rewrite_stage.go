package app

import (
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/config"
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
	if _, err := newRewriteStage(cfg, "/", upstreams); err != nil {
		return err
	}
	_, err := newOutboundStage(cfg, "/", nil)
	return err
}
