package app

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestStripRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, wantPath, wantPrefix string
	}{
		{"/api/orders", "/orders", "/api"},
		{"/API/orders", "/orders", "/api"},
		{"/api", "/", "/api"},
		{"/api/", "/", "/api"},
		{"/api/a%2Fb", "/a%2Fb", "/api"},
		{"/API/a%20b", "/a%20b", "/api"},
		{"/apiary", "/apiary", "evil"}, // outside the base: unchanged
	}
	for _, tt := range tests {
		h := http.Header{"X-Forwarded-Prefix": {"evil"}}
		r := &pipeline.Request{Path: tt.path, RawQuery: "x=1", Header: pipeline.HTTPHeader(h)}
		got := stripRequest(r, "/api")
		if got.Path != tt.wantPath || got.RawQuery != "x=1" {
			t.Errorf("%s: stripped to %q?%s, want %q?x=1", tt.path, got.Path, got.RawQuery, tt.wantPath)
		}
		if p := h.Get("X-Forwarded-Prefix"); p != tt.wantPrefix {
			t.Errorf("%s: X-Forwarded-Prefix = %q, want %q", tt.path, p, tt.wantPrefix)
		}
		if r.Path != tt.path {
			t.Errorf("%s: the front door's request was changed to %q", tt.path, r.Path)
		}
		if (got == r) != (tt.wantPath == tt.path) {
			t.Errorf("%s: copied = %v", tt.path, got != r)
		}
	}
}
