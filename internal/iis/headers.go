package iis

import (
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// CustomHeaders is <httpProtocol>: <customHeaders> are added to every
// response of the app, <redirectHeaders> to redirects (3xx with Location)
// only. As in IIS, a field is added even when the app set the same name
// (the client then gets both values).
type CustomHeaders struct {
	all, redirect []config.HeaderField
}

// NewCustomHeaders returns the stage for cfg, nil when it adds nothing.
func NewCustomHeaders(cfg *config.CustomHeaders) *CustomHeaders {
	if cfg == nil || len(cfg.Headers) == 0 && len(cfg.Redirect) == 0 {
		return nil
	}
	return &CustomHeaders{all: cfg.Headers, redirect: cfg.Redirect}
}

// Respond adds the fields to h; it never wraps the body.
func (s *CustomHeaders) Respond(_ *pipeline.Request, status int, h pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	for _, f := range s.all {
		h.Add(f.Name, f.Value)
	}
	if len(s.redirect) > 0 && status >= 300 && status < 400 && h.Get("Location") != "" {
		for _, f := range s.redirect {
			h.Add(f.Name, f.Value)
		}
	}
	return nil
}

// RemoveServerHeader is <requestFiltering removeServerHeader="true">: the
// Server field is removed from every response of the app, the app's own
// and any other. It runs first on the way out, so a Server field that the
// app's outbound rules or custom headers set on purpose is sent.
type RemoveServerHeader struct{}

// Respond removes Server from h; it never wraps the body.
func (RemoveServerHeader) Respond(_ *pipeline.Request, _ int, h pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	h.Del("Server")
	return nil
}
