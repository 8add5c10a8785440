package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestStripPathBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target, wantPath, wantURI, wantPrefix string
	}{
		{"/api/orders?id=1", "/orders", "/orders?id=1", "/api"},
		{"/API/orders", "/orders", "/orders", "/api"},
		{"/api", "/", "/", "/api"},
		{"/api/", "/", "/", "/api"},
		{"/api/a%2Fb", "/a/b", "/a%2Fb", "/api"},
		{"/apiary", "/apiary", "/apiary", "evil"}, // outside the base: unchanged
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		r.Header.Set("X-Forwarded-Prefix", "evil")
		_, got := stripPathBase(httptest.NewRecorder(), r, "/api")
		if got.URL.Path != tt.wantPath || got.URL.RequestURI() != tt.wantURI {
			t.Errorf("%s: path %q, URI %q; want %q, %q", tt.target, got.URL.Path, got.URL.RequestURI(), tt.wantPath, tt.wantURI)
		}
		if p := got.Header.Get("X-Forwarded-Prefix"); p != tt.wantPrefix {
			t.Errorf("%s: X-Forwarded-Prefix = %q, want %q", tt.target, p, tt.wantPrefix)
		}
		if got != r && (r.URL.RequestURI() == got.URL.RequestURI() || r.Header.Get("X-Forwarded-Prefix") != "evil") {
			t.Errorf("%s: the original request was changed", tt.target)
		}
	}
}

func TestStripRequest(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	r := &pipeline.Request{Path: "/API/a%20b", RawQuery: "x=1", Header: pipeline.HTTPHeader(h)}
	got := stripRequest(r, "/api")
	if got == r || got.Path != "/a%20b" || got.RawQuery != "x=1" || r.Path != "/API/a%20b" {
		t.Errorf("stripRequest = %+v (front door's request %+v)", got, r)
	}
	if h.Get("X-Forwarded-Prefix") != "/api" {
		t.Errorf("X-Forwarded-Prefix = %q", h.Get("X-Forwarded-Prefix"))
	}
	if other := (&pipeline.Request{Path: "/apiary"}); stripRequest(other, "/api") != other {
		t.Error("a path outside the base was changed")
	}
}
