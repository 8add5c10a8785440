package frontend

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// globalRules reads and compiles the site config's URL Rewrite global
// rules (siteconfig.Config.GlobalRules); nil when it names none. Elements
// of the file that are not carried out are logged.
func (s *Server) globalRules(cfg *siteconfig.Config) (pipeline.Stage, error) {
	if cfg.GlobalRules == "" {
		return nil, nil
	}
	spec, unsupported, err := webconfig.LoadGlobalRules(cfg.GlobalRules)
	if err != nil {
		return nil, err
	}
	for _, u := range unsupported {
		s.log.Warn("global rules element not carried out", "element", u)
	}
	rs, err := rewrite.Compile(spec, rewrite.Options{Global: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.GlobalRules, err)
	}
	if st := rewrite.NewStage(rs, nil); st != nil {
		return st, nil
	}
	return nil, nil
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
	pages.Status(w, http.StatusNotFound, 0, "")
	return app, false
}
