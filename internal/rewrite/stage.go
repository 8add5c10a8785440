package rewrite

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Stage runs URL Rewrite rules, then HTTP Redirection, as a front-door
// pipeline stage. A Rewrite changes the request the app sees, cleaned and
// checked as a client's request is (pipeline.Request.Rewrite: a path the
// front door would refuse from a client is refused with 400; the front
// door routes it again if the new path belongs to another app) and sets
// X-Original-URL to what the client asked for, as IIS does; a Rewrite to
// one of the allowed other servers (Options.Upstreams) also sets
// pipeline.Request.Upstream, and the request goes there; a redirect, a
// custom response and an abort end the request through the pipeline's
// result funnel. A rule error (a match timeout) is 500.52, IIS's URL
// Rewrite error. A Stage is immutable.
type Stage struct {
	rules    *RuleSet
	redirect *Redirector
}

// NewStage returns the stage for rules and redirect (either may be nil),
// or nil when both are.
func NewStage(rules *RuleSet, redirect *Redirector) *Stage {
	if rules == nil && redirect == nil {
		return nil
	}
	return &Stage{rules: rules, redirect: redirect}
}

var _ pipeline.Stage = (*Stage)(nil)

// Serve implements pipeline.Stage.
func (s *Stage) Serve(r *pipeline.Request) *pipeline.Result {
	in := inputOf(r)
	out, err := s.rules.Evaluate(&in)
	if err != nil {
		return pipeline.Refuse("rewrite", http.StatusInternalServerError, 52, err.Error())
	}
	if res := resultOf(out); res != nil {
		return res
	}
	for _, h := range out.SetHeaders {
		r.Header.Set(h[0], h[1])
	}
	if out.Action == Rewrite {
		orig := ""
		if !r.Rewritten() {
			orig = r.RequestURI()
		}
		if res := r.Rewrite(out.Path, out.Query); res != nil {
			return res // a rewritten path a client could not send
		}
		if orig != "" {
			r.Header.Set("X-Original-Url", orig) // X-Original-URL, as IIS's URL Rewrite sets it
		}
		if out.Upstream != "" {
			r.Upstream = out.Upstream
			return nil // for another server: its redirects are not this app's
		}
		in.Path, in.Query = r.Path, r.RawQuery
	}
	return resultOf(s.redirect.Evaluate(&in))
}

// resultOf turns an Outcome that ends the request into its Result; nil for
// None and Rewrite.
func resultOf(out Outcome) *pipeline.Result {
	why := func() string { return "rule " + strconv.Quote(out.Rule) }
	switch out.Action {
	case Redirect:
		return &pipeline.Result{Stage: "rewrite", Status: out.Status, Location: out.Location, Reason: why()}
	case CustomResponse:
		res := pipeline.Refuse("rewrite", out.Status, out.SubStatus, why()+": "+out.Reason)
		res.StatusText = out.Reason
		switch {
		case out.Description != "":
			// ASP.NET Core's IIS rewrite sends the description as the body.
			res.Body, res.ContentType = []byte(out.Description), "text/plain; charset=utf-8"
			res.Header = [][2]string{{"X-Content-Type-Options", "nosniff"}}
		case out.Status < 400:
			res.Body = []byte{} // a success or redirect status gets no error page
		}
		return res
	case Abort:
		return &pipeline.Result{Stage: "rewrite", Abort: true, Reason: why() + ": AbortRequest"}
	}
	return nil
}

// inputOf describes r for the rules. It does not allocate unless the
// client address has to be formatted.
func inputOf(r *pipeline.Request) Input {
	in := Input{
		Method: r.Method, Path: r.Path, Query: r.RawQuery, Host: r.Host,
		HTTPS: r.Scheme == "https", Protocol: r.Proto, Header: r.Header,
		AppPath: r.AppPath, AppDir: r.AppDir,
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

// OutStage runs an app's outbound rules over each of its responses as a
// pipeline.OutStage: the rules on response headers change the header;
// the rules on the body (filterByTags) wrap the body of a text/html
// response that the app did not compress, rewriting URL attributes as the
// body streams through. A rule whose match exceeds its timeout ends the rules for that
// response; the failure is logged and the response goes out as the rules
// before it left it.
type OutStage struct {
	rules *Outbound
	body  bool // rules has rules on the body
	log   *slog.Logger
}

// NewOutStage returns the stage for rules, nil when there are none. log
// receives rule failures; nil means slog.Default().
func NewOutStage(rules *Outbound, log *slog.Logger) *OutStage {
	if rules.Len() == 0 {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	return &OutStage{rules: rules, body: rules.HasBody(), log: log}
}

var _ pipeline.OutStage = (*OutStage)(nil)

// Respond implements pipeline.OutStage.
func (s *OutStage) Respond(r *pipeline.Request, status int, h pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	var in Input
	if r != nil {
		in = inputOf(r)
	}
	if err := s.rules.Apply(&in, status, h); err != nil {
		s.log.Warn("outbound rewrite rule failed; the rules after it were not applied", "err", err)
	}
	if !s.body || !hasBody(status) || !IsHTML(h.Get("Content-Type")) {
		return nil
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		s.log.Debug("outbound rules on the body not applied: the app compressed the response", "encoding", ce)
		return nil
	}
	rules, err := s.rules.Body(&in, status, h)
	if err != nil {
		s.log.Warn("outbound rewrite rule failed; the body is sent unchanged", "err", err)
		return nil
	}
	if rules == nil {
		return nil
	}
	h.Del("Content-Length") // the rewritten body has another length
	return func(next pipeline.BodyWriter) pipeline.BodyWriter { return NewHTMLRewriter(next, rules, s.log) }
}

// hasBody reports whether a response with status has a whole body to
// rewrite: not a 204 or 304, nor a part of one (206, whose Content-Range
// a rewrite would falsify).
func hasBody(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified && status != http.StatusPartialContent
}
