package app

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// rewriteStage is the URL Rewrite and HTTP Redirection stage of an app: its
// web.config <rewrite> rules, then its <httpRedirect>. A Rewrite changes
// the request the app sees (the front door routes it again if the new path
// belongs to another app); a redirect, a custom response and an abort end
// the request through the pipeline's result funnel.
type rewriteStage struct {
	rules    *rewrite.RuleSet
	redirect *rewrite.Redirector
}

// newRewriteStage compiles cfg's <rewrite> and <httpRedirect> for the app
// at appPath. It returns nil when neither is configured.
func newRewriteStage(cfg *config.App, appPath string) (*rewriteStage, error) {
	rules, err := rewrite.Compile(cfg.Rewrite, rewrite.Options{AppPath: appPath, Dir: cfg.Dir})
	if err != nil {
		return nil, err
	}
	redirect, err := rewrite.CompileRedirect(cfg.HTTPRedirect, appPath)
	if err != nil {
		return nil, err
	}
	if rules == nil && redirect == nil {
		return nil, nil
	}
	return &rewriteStage{rules: rules, redirect: redirect}, nil
}

// Serve implements pipeline.Stage.
func (s *rewriteStage) Serve(r *pipeline.Request) *pipeline.Result {
	in := rewriteInput(r)
	out, err := s.rules.Evaluate(&in)
	if err != nil {
		// IIS answers a URL Rewrite module error with 500.52.
		return pipeline.Refuse("rewrite", http.StatusInternalServerError, 52, err.Error())
	}
	if res := rewriteResult(out); res != nil {
		return res
	}
	if out.Action == rewrite.Rewrite {
		// As IIS's URL Rewrite does, tell the app what the client asked for.
		r.Header.Set("X-Original-URL", r.RequestURI())
		r.Rewrite(out.Path, out.Query)
		in.Path, in.Query = out.Path, out.Query
	}
	return rewriteResult(s.redirect.Evaluate(&in))
}

// rewriteResult turns an Outcome that ends the request into its Result; nil
// for None and Rewrite.
func rewriteResult(out rewrite.Outcome) *pipeline.Result {
	why := "rule " + strconv.Quote(out.Rule)
	switch out.Action {
	case rewrite.Redirect:
		return &pipeline.Result{Stage: "rewrite", Status: out.Status, Location: out.Location, Reason: why}
	case rewrite.CustomResponse:
		res := pipeline.Refuse("rewrite", out.Status, out.SubStatus, why+": "+out.Reason)
		if out.Description != "" {
			// ASP.NET Core's IIS rewrite sends the description as the body.
			res.Body, res.ContentType = []byte(out.Description), "text/plain; charset=utf-8"
			res.Header = [][2]string{{"X-Content-Type-Options", "nosniff"}}
		}
		return res
	case rewrite.Abort:
		return &pipeline.Result{Stage: "rewrite", Abort: true, Reason: why + ": AbortRequest"}
	}
	return nil
}

// rewriteInput describes r for the rules. It does not allocate unless the
// client address has to be formatted.
func rewriteInput(r *pipeline.Request) rewrite.Input {
	in := rewrite.Input{
		Method: r.Method, Path: r.Path, Query: r.RawQuery, Host: r.Host,
		HTTPS: r.Scheme == "https", Protocol: r.Proto, Header: r.Header,
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		in.RemoteAddr, in.RemotePort = host, port
	}
	if ip := r.ClientIP; ip.IsValid() {
		if peer, err := netip.ParseAddr(in.RemoteAddr); err != nil || peer.Unmap() != ip {
			// The client a trusted proxy forwarded for (X-Forwarded-For).
			in.RemoteAddr = ip.String()
		}
	}
	if host, port, err := net.SplitHostPort(r.LocalAddr); err == nil {
		in.LocalAddr, in.ServerPort = host, port
	}
	return in
}
