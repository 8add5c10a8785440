package app

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

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
