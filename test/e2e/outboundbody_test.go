package e2e

import (
	"strings"
	"testing"
)

// Outbound rules on the response body (filterByTags) rewrite the links of
// an app's HTML as it streams out, with and without compression after
// them; the Content-Length of the app's page is dropped, since the body
// changes.
func TestIISOutboundBodyRules(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "compression: {dynamic: true, minSize: 1}", "/shop", "moved+strip")
	const want = `<!DOCTYPE html>
<html><head><title>Shop</title><link rel="stylesheet" href="/css/site.css"></head>
<body><a href="/shop/cart">Cart</a> <a href="/shop/help">Help</a> <img src="/shop/img/logo.png" alt="logo">
<form action="/shop/login" method="post"></form><script>var u = '<a href="/not-a-link">';</script></body></html>
`
	for _, enc := range []string{"", "gzip"} {
		var hdr []string
		if enc != "" {
			hdr = []string{"Accept-Encoding", enc}
		}
		resp, body := s.do("GET", "/shop/site/", nil, hdr...)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != enc {
			t.Fatalf("Accept-Encoding %q: %d, Content-Encoding %q", enc, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		if got := decodeBody(t, enc, body); got != want {
			t.Errorf("Accept-Encoding %q: body\n%s\nwant\n%s", enc, got, want)
		}
	}
	// Not HTML: untouched.
	if resp, body := s.do("GET", "/shop/headers", nil); resp.StatusCode != 200 || !strings.Contains(body, `"path"`) {
		t.Errorf("GET /shop/headers = %d %q", resp.StatusCode, body)
	}
}
