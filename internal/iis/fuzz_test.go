package iis

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// FuzzRequestFiltering checks that any method, path, query and header
// either passes or gets one of request filtering's 404 sub-statuses, and
// never panics. The seeds are the unit tests' hostile shapes.
func FuzzRequestFiltering(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "/a%2541", ""}, {"TRACE", "/", ""}, {"GET", "/caf%C3%A9", "q=%C3%A9"},
		{"GET", "/%", "%"}, {"GET", "/app_data/x.config", "q=%3Cscript"}, {"GET", "/a+b", "a+b=%zz"},
		{"", "", ""}, {"GET", "/\xff/~/", "\x80"},
	} {
		f.Add(s[0], s[1], s[2], "x")
	}
	s := NewRequestFiltering(filtering())
	valid := map[int]bool{5: true, 6: true, 7: true, 8: true, 10: true, 11: true, 12: true, 18: true}
	f.Fuzz(func(t *testing.T, method, path, query, note string) {
		r := &pipeline.Request{Method: method, Path: path, RawQuery: query, Header: pipeline.HTTPHeader(http.Header{"X-Note": {note}})}
		res := s.Serve(r)
		if res != nil && (res.Status != http.StatusNotFound || !valid[res.Substatus]) {
			t.Fatalf("%q %q %q: refused with %s", method, path, query, res.Code())
		}
		if res == nil && len(note) > 8 {
			t.Fatalf("a %d-byte X-Note passed its 8-byte limit", len(note))
		}
		if res == nil && strings.Contains(strings.ToLower(query), "<script") {
			t.Fatalf("query %q passed denyQueryStringSequences", query)
		}
	})
}

// FuzzAcceptEncoding checks that the encoding chosen for any Accept-Encoding
// is one the site offers, or none.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=1.0, gzip;q=0.8", "*;q=0", "zstd;q=", ";;,,", "GZIP;Q=0.5", "identity, *;q=0.1"} {
		f.Add(s)
	}
	c := newTestCompression()
	f.Fuzz(func(t *testing.T, ae string) {
		enc := c.choose(pipeline.HTTPHeader(http.Header{"Accept-Encoding": {ae}}))
		switch enc {
		case "", "gzip", "br", "zstd":
		default:
			t.Fatalf("Accept-Encoding %q chose %q", ae, enc)
		}
	})
}
