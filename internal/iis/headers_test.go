package iis

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestCustomHeaders(t *testing.T) {
	t.Parallel()
	s := NewCustomHeaders(&config.CustomHeaders{
		Headers:  []config.HeaderField{{Name: "X-Frame-Options", Value: "SAMEORIGIN"}, {Name: "X-Content-Type-Options", Value: "nosniff"}},
		Redirect: []config.HeaderField{{Name: "Cache-Control", Value: "no-store"}},
	})
	h := http.Header{"X-Frame-Options": {"DENY"}}
	if s.Respond(&pipeline.Request{}, 200, pipeline.HTTPHeader(h)) != nil {
		t.Error("custom headers wrapped the body")
	}
	if got := h["X-Frame-Options"]; !reflect.DeepEqual(got, []string{"DENY", "SAMEORIGIN"}) {
		t.Errorf("X-Frame-Options = %q, want the app's and the custom value (as IIS)", got)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "" {
		t.Errorf("header = %v", h)
	}
	redirect := http.Header{"Location": {"/x"}}
	s.Respond(&pipeline.Request{}, 302, pipeline.HTTPHeader(redirect))
	if redirect.Get("Cache-Control") != "no-store" || redirect.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("redirect header = %v", redirect)
	}
	notModified := http.Header{}
	s.Respond(&pipeline.Request{}, 304, pipeline.HTTPHeader(notModified))
	if notModified.Get("Cache-Control") != "" {
		t.Error("redirect headers on a 304 without Location")
	}
	if NewCustomHeaders(&config.CustomHeaders{}) != nil || NewCustomHeaders(nil) != nil {
		t.Error("an empty section built a stage")
	}
}
