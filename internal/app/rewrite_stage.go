package app

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// newRewriteStage compiles cfg's <rewrite> and <httpRedirect> for the app
// at appPath into its URL Rewrite stage; nil when it has neither.
func newRewriteStage(cfg *config.App, appPath string) (*rewrite.Stage, error) {
	rules, err := rewrite.Compile(cfg.Rewrite, rewrite.Options{AppPath: appPath, Dir: cfg.Dir})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	redirect, err := rewrite.CompileRedirect(cfg.HTTPRedirects, appPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return rewrite.NewStage(rules, redirect), nil
}
