package pipeline

import (
	"net/http"
	"slices"
	"strings"
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

// TestResponseKey compares ResponseKey, which finds a name spelled as its
// key by a switch first, with its rule: the framing key the name equals
// ignoring case, else the name as written. Each key as written, in small
// and capital letters and with one letter's case flipped, and names near
// the keys.
func TestResponseKey(t *testing.T) {
	rule := func(name string) string {
		for _, k := range framingKeys {
			if strings.EqualFold(k, name) {
				return k
			}
		}
		return name
	}
	names := []string{"", "X-Pid", "Server", "ETag", "Etag", "Dat", "Dates", "Content-Typo", "Content-Types",
		"Tf", "Trailers", "Keep-Alive ", "Content-Location", "Proxy-Authenticate"}
	for _, k := range framingKeys {
		names = append(names, k, strings.ToLower(k), strings.ToUpper(k))
		for i := range len(k) {
			flipped := []byte(k)
			flipped[i] ^= 0x20
			names = append(names, string(flipped))
		}
	}
	for _, name := range names {
		if got, want := ResponseKey(name), rule(name); got != want {
			t.Errorf("ResponseKey(%q) = %q, want %q", name, got, want)
		}
	}
}
