package h2srv

import (
	"testing"

	"golang.org/x/net/http2"
)

// TestPathBytes sends :path values an HTTP/1.1 request line cannot carry:
// a space or a tab makes the request malformed (reset with PROTOCOL_ERROR,
// no handler), and bytes beyond ASCII and '#' reach the handler
// percent-encoded, never raw (they would be forwarded into the app's
// request line as they are).
func TestPathBytes(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 1)
	p := serve(t, testConfig(), func(st *Stream) {
		paths <- st.Path
		hello(st)
	})
	id := uint32(1)
	for _, path := range []string{"/index.txt HTTP/1.1", "/a\tb", "/a?b c"} {
		p.headers(id, true, ":path", path)
		p.expectRST(id, http2.ErrCodeProtocol)
		id += 2
	}
	p.headers(id, true, ":path", "/caf\xc3\xa9#x?q=\xff")
	if r := p.response(id); r.status != "200" {
		t.Fatalf("a path beyond ASCII: %+v", r)
	}
	if got, want := <-paths, "/caf%C3%A9%23x?q=%FF"; got != want {
		t.Fatalf("the handler got :path %q, want %q", got, want)
	}
}
