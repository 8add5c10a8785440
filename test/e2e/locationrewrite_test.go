package e2e

import (
	"encoding/json"
	"testing"
)

// URL Rewrite rules in a <location path="spa"> (a single-page app's
// fallback) run after the app's own rules for URLs below that path, see
// the URL relative to it and resolve relative URLs there; the app's rules
// still apply everywhere.
func TestIISRewriteInLocation(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "spalocation")
	got := func(target string) (int, string) {
		t.Helper()
		resp, body := s.do("GET", target, nil)
		var rep struct {
			RawRequestURI string `json:"raw_request_uri"`
		}
		if json.Unmarshal([]byte(body), &rep) != nil {
			return resp.StatusCode, body
		}
		return resp.StatusCode, rep.RawRequestURI
	}
	tests := []struct {
		target string
		status int
		want   string // the URI the app got, or the body
	}{
		{"/spa/orders/7", 200, "/spa/headers"},
		{"/spa/", 200, "/spa/headers"},
		{"/old/headers", 200, "/new/headers"},
		{"/spa/drafts/x", 403, "drafts are private"},
	}
	for _, tt := range tests {
		if status, uri := got(tt.target); status != tt.status || uri != tt.want {
			t.Errorf("GET %s = %d %q, want %d %q", tt.target, status, uri, tt.status, tt.want)
		}
	}
	// Outside the location, and below it where the fallback does not
	// match, nothing is rewritten.
	for _, target := range []string{"/orders/7", "/spa/api/orders"} {
		if resp, body := s.do("GET", target, nil); resp.StatusCode != 200 || len(body) < 5 || body[:5] != "Hello" {
			t.Errorf("GET %s = %d %q, want the app's own answer", target, resp.StatusCode, body)
		}
	}
}
