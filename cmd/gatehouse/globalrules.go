package main

import (
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// loadGlobalRules reads and compiles the URL Rewrite global rules in file
// (the site config's globalRules). It returns the rules as read, the
// elements of the file that are not carried out, and the stage the front
// door runs before any app's (nil when there are no rules). An error names
// the file and line.
func loadGlobalRules(file string) (*config.Rewrite, []string, pipeline.Stage, error) {
	rw, unsupported, err := webconfig.LoadGlobalRules(file)
	if err != nil {
		return nil, nil, nil, err
	}
	rs, err := rewrite.Compile(rw, rewrite.Options{Global: true})
	if err != nil {
		return nil, nil, nil, err // a *rewrite.Error naming the rule's file and line
	}
	if st := rewrite.NewStage(rs, nil); st != nil {
		return rw, unsupported, st, nil
	}
	return rw, unsupported, nil, nil
}

// globalRules is how the front door builds the global rules, at start and
// at every reload: as loadGlobalRules, with the elements not carried out
// logged.
func globalRules(log *slog.Logger) frontend.GlobalRulesFunc {
	return func(file string) (pipeline.Stage, error) {
		_, unsupported, st, err := loadGlobalRules(file)
		for _, u := range unsupported {
			log.Warn("global rules element not carried out", "element", u)
		}
		return st, err
	}
}
