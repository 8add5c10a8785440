package pipeline

import (
	"net/http"
	"slices"
	"testing"
)

func TestResponseHeader(t *testing.T) {
	m := http.Header{"ETag": {`"v1"`}, "X-XSS-Protection": {"0"}, "Content-Length": {"5"}}
	h := ResponseHeader(m)
	if h.Get("Etag") != `"v1"` || h.Get("x-xss-protection") != "0" || h.Get("content-length") != "5" || h.Get("Vary") != "" {
		t.Errorf("Get without case: %v", m)
	}
	h.Add("Referrer-Policy", "no-referrer")
	h.Add("x-xss-protection", "1")
	h.Set("ETag", `W/"v1"`)
	h.Set("content-type", "text/plain")
	want := http.Header{"ETag": {`W/"v1"`}, "X-XSS-Protection": {"0", "1"}, "Content-Length": {"5"},
		"Referrer-Policy": {"no-referrer"}, "Content-Type": {"text/plain"}}
	if len(m) != len(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for k, vs := range want {
		if !slices.Equal(m[k], vs) {
			t.Errorf("%s = %q, want %q (all: %v)", k, m[k], vs, m)
		}
	}
	var vals []string
	h.Values("X-Xss-Protection", func(v string) bool { vals = append(vals, v); return true })
	if !slices.Equal(vals, []string{"0", "1"}) {
		t.Errorf("Values = %q", vals)
	}
	h.Del("etag")
	h.Del("X-Xss-Protection")
	if h.Get("ETag") != "" || len(m) != 3 {
		t.Errorf("Del without case left %v", m)
	}
	if got := testing.AllocsPerRun(100, func() { _ = h.Get("Server"); h.Del("Server") }); got != 0 {
		t.Errorf("Get and Del allocate %v times", got)
	}
}
