package frontend

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// globalRules builds the site config's URL Rewrite global rules
// (siteconfig.Config.GlobalRules) with the function WithGlobalRules gave;
// nil when it names none.
func (s *Server) globalRules(cfg *siteconfig.Config) (pipeline.Stage, error) {
	if cfg.GlobalRules == "" {
		return nil, nil
	}
	if s.buildGlobal == nil {
		return nil, fmt.Errorf("globalRules %s: this server runs no global rules", cfg.GlobalRules)
	}
	return s.buildGlobal(cfg.GlobalRules)
}

// runGlobal runs the global rules over pr before any app's stages, as IIS
// runs them before the URL is mapped to an application; app is where the
// request was routed first (its folder is what {REQUEST_FILENAME} maps
// into). It returns the app that takes the (possibly rewritten) request,
// or false when the rules answered it. They run once per request.
func (s *Server) runGlobal(site *siteRoute, app *appRoute, pr *pipeline.Request, w http.ResponseWriter) (*appRoute, bool) {
	pr.AppPath, pr.AppDir = app.path, app.dir
	if res := site.global.Serve(pr); res != nil {
		pipeline.WriteResult(w, pr, res, s.log)
		return app, false
	}
	if !pr.Rewritten() {
		return app, true
	}
	if next := site.match(pr.Path); next != nil {
		return next, true
	}
	pipeline.WriteStatus(w, pr, http.StatusNotFound)
	return app, false
}
