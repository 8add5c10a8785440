package frontend

import (
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// siteRoute is one site as the request path sees it. Built once per config
// and never mutated afterwards, so requests read it without locks.
type siteRoute struct {
	name string
	// apps are sorted longest path first; "/" (if any) is last.
	apps []appRoute
	// redirect sends requests on http listeners to httpsPort (0 = 443,
	// omitted from the URL).
	redirect  bool
	httpsPort int
	lim       limits
	// observers are told about every finished request of the site (the
	// access log, if configured).
	observers []pipeline.Observer
	// global is the config's URL Rewrite global rules; nil for none.
	global pipeline.Stage
}

// Route implements pipeline.Router for the site's applications.
func (s *siteRoute) Route(path string) string {
	if a := s.match(path); a != nil {
		return a.path
	}
	return ""
}

type appRoute struct {
	path string // "/" or "/api", as configured
	dir  string // the app's folder
	app  App
}

// match returns the application with the longest virtual path that is a
// segment-wise, case-insensitive prefix of path, or nil.
func (s *siteRoute) match(path string) *appRoute {
	for i := range s.apps {
		a := &s.apps[i]
		if a.path == "/" || hasPathPrefix(path, a.path) {
			return a
		}
	}
	return nil
}

// hasPathPrefix reports whether path is prefix or starts with prefix + "/",
// ignoring ASCII case. It does not allocate.
func hasPathPrefix(path, prefix string) bool {
	if len(path) < len(prefix) || !strings.EqualFold(path[:len(prefix)], prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

func sortApps(apps []appRoute) {
	sort.SliceStable(apps, func(i, j int) bool {
		if apps[i].path == "/" || apps[j].path == "/" {
			return apps[j].path == "/" && apps[i].path != "/"
		}
		return len(apps[i].path) > len(apps[j].path)
	})
}

// hostTable maps a Host header to a value: exact name, then the longest
// wildcard suffix, then the default (binding without host name).
type hostTable[T any] struct {
	exact map[string]T
	wild  []wildEntry[T] // longest suffix first
	def   T
	hasDf bool
}

type wildEntry[T any] struct {
	suffix string // ".example.com" for "*.example.com"
	val    T
}

func (t *hostTable[T]) add(host string, v T) {
	switch {
	case host == "":
		t.def, t.hasDf = v, true
	case strings.HasPrefix(host, "*."):
		t.wild = append(t.wild, wildEntry[T]{suffix: host[1:], val: v})
		sort.SliceStable(t.wild, func(i, j int) bool { return len(t.wild[i].suffix) > len(t.wild[j].suffix) })
	default:
		if t.exact == nil {
			t.exact = map[string]T{}
		}
		t.exact[host] = v
	}
}

// lookup finds the entry for host (a Host header or SNI name: port and a
// trailing dot are ignored, case is not significant).
func (t *hostTable[T]) lookup(host string) (T, bool) {
	host = hostOnly(host)
	if !isLower(host) {
		host = strings.ToLower(host)
	}
	if v, ok := t.exact[host]; ok {
		return v, true
	}
	for i := range t.wild {
		w := &t.wild[i]
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			return w.val, true
		}
	}
	return t.def, t.hasDf
}

// hostOnly strips the port and a trailing dot from a Host header value.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}
