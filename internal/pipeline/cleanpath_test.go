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

func TestDecodePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/a/b", "/a/b"},
		{"/a%20b/c%2Fd", "/a b/c/d"},
		{"/%25", "/%"},
		{"/%2541", "/%41"},
		{"/a%2", "/a%2"},
		{"/%c3%A9", "/\u00e9"},
	} {
		if got := pipeline.DecodePath(tc.in); got != tc.want {
			t.Errorf("DecodePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = pipeline.DecodePath("/api/orders/42") }); n != 0 {
		t.Errorf("DecodePath of a path without escapes allocates %v times", n)
	}
}

// TestRewriteCleans checks that a rewritten path is cleaned and checked as
// a client's is: what URL Rewrite produces is judged by the later stages
// and reaches the app in the same form.
func TestRewriteCleans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		to, want string
		bad      bool
	}{
		{"/new/%2e%2e/admin/secret.txt", "/admin/secret.txt", false},
		{"/new/../../admin/x", "/admin/x", false},
		{"/%61pi/x", "/api/x", false},
		{"/new/a%2Fb", "/new/a%2Fb", false},
		{"/new/..%2Fadmin/secret.txt", "/old", true},
		{"/new/..%5Cadmin", "/old", true},
		{"/api%2Fsecret", "/old", true},
	} {
		r := &pipeline.Request{Path: "/old", RawQuery: "q", Router: apps{}}
		res := r.Rewrite(tc.to, "n")
		if (res != nil) != tc.bad || r.Path != tc.want {
			t.Errorf("Rewrite(%q): result %+v, path %q; want refused %v, path %q", tc.to, res, r.Path, tc.bad, tc.want)
		}
		if res != nil && res.Status != 400 {
			t.Errorf("Rewrite(%q): status %d, want 400", tc.to, res.Status)
		}
		if p, q := r.Original(); p != "/old" || q != "q" {
			t.Errorf("Rewrite(%q): original %q %q", tc.to, p, q)
		}
	}
}
