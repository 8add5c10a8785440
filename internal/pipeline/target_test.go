package pipeline_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// apps routes like a site with applications at "/" and "/api".
type apps struct{}

func (apps) Route(path string) string {
	if len(path) >= 4 && strings.EqualFold(path[:4], "/api") && (len(path) == 4 || path[4] == '/') {
		return "/api"
	}
	return "/"
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path, host, protocol string
		bad                          bool
	}{
		{"GET", "/", "t", "", false},
		{"OPTIONS", "*", "t", "", false},
		{"GET", "*", "t", "", true},
		{"PRI", "*", "t", "", true},
		{"PRI", "/", "t", "", true},
		{"GET", "a", "t", "", true},
		{"GET", "", "t", "", true},
		{"get", "/x", "t", "", false},
		{"G T", "/x", "t", "", true},
		// A space or control byte is no part of a target; escaped, it is.
		{"GET", "/a b", "t", "", true},
		{"GET", "/a\x01b", "t", "", true},
		{"GET", "/a\x7fb", "t", "", true},
		{"GET", "/a%20b", "t", "", false},
		// So is the query, which is written as it is into the app's
		// request line.
		{"GET", "/a?q=a b", "t", "", true},
		{"GET", "/a?q=\x01", "t", "", true},
		{"GET", "/a?q=\x7f", "t", "", true},
		{"GET", "/a?q=a%20b&r=/?", "t", "", false},
		{"", "/x", "t", "", true},
		// CONNECT is a tunnel; only RFC 8441's WebSocket over HTTP/2 passes.
		{"CONNECT", "", "t:443", "", true},
		{"CONNECT", "t:443", "t:443", "", true},
		{"CONNECT", "/chat", "t", "websocket", false},
		{"CONNECT", "/chat", "t", "WebSocket", false},
		{"CONNECT", "/chat", "t", "h2c", true},
		{"CONNECT", "chat", "t", "websocket", true},
		// Host and :authority: the characters of a host and port.
		{"GET", "/", "", "", false},
		{"GET", "/", "t:8080", "", false},
		{"GET", "/", "[::1]:8080", "", false},
		{"GET", "/", "t evil", "", true},
		{"GET", "/", "t\tevil", "", true},
		{"GET", "/", "u@t", "", true},
		{"GET", "/", "t/x", "", true},
		// Encoded separators that change what an app decoding them sees.
		{"GET", "/x/..%2fadmin/secret.txt", "t", "", true},
		{"GET", "/x/..%2Fadmin", "t", "", true},
		{"GET", "/x%2F..%2Fadmin", "t", "", true},
		{"GET", "/x/..%5cadmin", "t", "", true},
		{"GET", `/x/..\admin`, "t", "", true},
		{"GET", "/x/.%2fadmin", "t", "", true},
		{"GET", "/api%2Fsecret", "t", "", true},
		{"GET", `/api\secret`, "t", "", true},
		{"GET", "/api/a%2Fb", "t", "", false},
		{"GET", "/a%2Fb/c", "t", "", false},
		{"GET", "/x/..%2e%2fa", "t", "", false}, // "..%2e" is "..." to every reader
		{"GET", "/x/a..%2fb", "t", "", false},
	} {
		path, query, _ := strings.Cut(tc.path, "?")
		r := &pipeline.Request{Method: tc.method, Path: pipeline.CleanPath(path), RawQuery: query, Host: tc.host,
			Header: pipeline.HTTPHeader(http.Header{}), Router: apps{}}
		if tc.protocol != "" {
			r.Header.Set(":protocol", tc.protocol)
		}
		if got := pipeline.Validate(r); (got != "") != tc.bad {
			t.Errorf("Validate(%s %q, Host %q, :protocol %q) = %q, want refused %v",
				tc.method, tc.path, tc.host, tc.protocol, got, tc.bad)
		}
	}
}

func TestValidateNoAlloc(t *testing.T) {
	r := &pipeline.Request{Method: "GET", Path: "/api/orders/42", Host: "example.com:8443", Router: apps{}}
	if n := testing.AllocsPerRun(100, func() { _ = pipeline.Validate(r) }); n != 0 {
		t.Errorf("Validate of a plain request allocates %v times", n)
	}
}
