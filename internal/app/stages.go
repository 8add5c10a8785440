package app

import (
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// buildChain builds the app's front-door stages from its settings, in the
// order IIS runs its modules: IP and domain restrictions, request
// filtering, URL Rewrite and HTTP redirection, authentication and
// authorization on the way in; custom headers and compression on the way
// out. It returns nil when nothing is configured, so such an app's
// requests pay nothing for the pipeline.
func (a *App) buildChain(cfg *config.App) (*pipeline.Chain, error) {
	var c pipeline.Chain
	// Each IIS section adds its stage here, in the order above.
	if len(c.In) == 0 && len(c.Out) == 0 && len(c.Observers) == 0 {
		return nil, nil
	}
	return &c, nil
}

// Chain returns the app's current front-door stages (nil: none). The front
// door calls it for every request; it is swapped whole when web.config
// changes.
func (a *App) Chain() *pipeline.Chain { return a.chain.Load() }
