package pipeline_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestCleanPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/api/x", "/api/x"},
		{"/x/../api/secret", "/api/secret"},
		{"/x/%2e%2e/api/secret", "/api/secret"},
		{"/x/%2E%2e/api/secret", "/api/secret"},
		{"/x/.%2e/api", "/api"},
		{"/./api/x", "/api/x"},
		{"/%2e/api/x", "/api/x"},
		{"/api/../x", "/x"},
		{"/api/%2e%2e", "/"},
		{"/api/..", "/"},
		{"/api/.", "/api/"},
		{"/a/b/..", "/a/"},
		{"/..", "/"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"/a//../b", "/a/b"},
		{"/a/..b/c", "/a/..b/c"},
		{"/a/.b", "/a/.b"},
		{"/a/...", "/a/..."},
		{"/%61pi/secret", "/api/secret"},
		{"/a%2Fb/../c", "/c"},
		{"/x/..%2F/api", "/x/..%2F/api"},
		{"/x/%2e%2e%2fapi", "/x/..%2fapi"},
		{"/a%20b/./c", "/a%20b/c"},
		{"/a%zz/../b", "/b"},
		{"/a%", "/a%25"},
		{"/a%2", "/a%252"},
		{"/%7%30", "/%2570"},
		{"/%6%31pi/secret", "/%2561pi/secret"},
		{"/%7e/%5F", "/~/_"},
		{"*", "*"},
		{"", ""},
		{"example.com:443", "example.com:443"},
	} {
		if got := pipeline.CleanPath(tc.in); got != tc.want {
			t.Errorf("CleanPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanPathNoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = pipeline.CleanPath("/api/orders/42") }); n != 0 {
		t.Errorf("CleanPath of a clean path allocates %v times", n)
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/x/../api", "/x/%2e%2e/api", "/./a", "/a%2Fb", "/%", "/..%2e/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if len(p) == 0 || p[0] != '/' {
			return
		}
		c := pipeline.CleanPath(p)
		if c == "" || c[0] != '/' {
			t.Fatalf("CleanPath(%q) = %q: not absolute", p, c)
		}
		if again := pipeline.CleanPath(c); again != c {
			t.Fatalf("CleanPath not idempotent: %q -> %q -> %q", p, c, again)
		}
		for _, seg := range splitSegs(c) {
			if seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q keeps a dot segment", p, c)
			}
		}
	})
}

func splitSegs(p string) []string {
	var segs []string
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			segs = append(segs, p[start:i])
			start = i + 1
		}
	}
	return segs
}
