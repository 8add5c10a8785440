package frontend

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

func TestHostTable(t *testing.T) {
	t.Parallel()
	var tab hostTable[string]
	tab.add("www.example.com", "exact")
	tab.add("*.example.com", "wild")
	tab.add("*.api.example.com", "wild-api")
	tests := []struct {
		host, want string
		ok         bool
	}{
		{"www.example.com", "exact", true},
		{"WWW.Example.COM:8443", "exact", true},
		{"www.example.com.", "exact", true},
		{"shop.example.com", "wild", true},
		{"a.b.example.com", "wild", true},
		{"v1.api.example.com", "wild-api", true},
		{"example.com", "", false},
		{"other.test", "", false},
		{"[::1]:80", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := tab.lookup(tt.host)
			if got != tt.want || ok != tt.ok {
				t.Errorf("lookup(%q) = %q, %v; want %q, %v", tt.host, got, ok, tt.want, tt.ok)
			}
		})
	}
	tab.add("", "default")
	if got, _ := tab.lookup("other.test"); got != "default" {
		t.Errorf("with a default binding: %q", got)
	}
}

func TestMatchApp(t *testing.T) {
	t.Parallel()
	sr := &siteRoute{apps: []appRoute{{path: "/"}, {path: "/api"}, {path: "/api/v2"}}}
	sortApps(sr.apps)
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/api", "/api"},
		{"/API/x", "/api"},
		{"/apix", "/"},
		{"/api/v2", "/api/v2"},
		{"/Api/V2/deep/er", "/api/v2"},
		{"/api/v20", "/api"},
		{"", "/"},
	}
	for _, tt := range tests {
		if got := sr.match(tt.path); got == nil || got.path != tt.want {
			t.Errorf("match(%q) = %v, want %q", tt.path, got, tt.want)
		}
	}
	noRoot := &siteRoute{apps: []appRoute{{path: "/api"}}}
	if got := noRoot.match("/other"); got != nil {
		t.Errorf("site without / matched %q", got.path)
	}
}

func TestAppendValue(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "-"},
		{"Mozilla/5.0 (X11; Linux)", "Mozilla/5.0+(X11;+Linux)"},
		{"a\tb\r\nc", "a+b++c"},
	}
	for _, tt := range tests {
		if got := string(appendValue(nil, tt.in)); got != tt.want {
			t.Errorf("appendValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type nopApp struct{}

func (nopApp) Forward(_ context.Context, w http.ResponseWriter, _ *pipeline.Request, _ io.Reader) {
	w.WriteHeader(http.StatusNoContent)
}
func (nopApp) Close(context.Context) error { return nil }
func (nopApp) Chain() *pipeline.Chain      { return nil }
func (a nopApp) Current() pipeline.App     { return a }

// BenchmarkServeHTTP measures the front door's own cost per request
// (routing, limits, access log line) around an app that does nothing.
func BenchmarkServeHTTP(b *testing.B) {
	dir := b.TempDir()
	for _, d := range []string{"root", "api"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o755)
		_ = os.WriteFile(filepath.Join(dir, d, "web.config"), []byte("<configuration/>"), 0o644)
	}
	cfg, err := siteconfig.Parse([]byte(`
sites:
  - name: s
    bindings: [{scheme: http, port: 0, host: www.example.com}, {scheme: http, port: 0, host: "*.example.com"}]
    applications: [{path: /, dir: root}, {path: /api, dir: api}]
    accessLog: {path: access.log}
`), filepath.Join(dir, "gatehouse.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, func(context.Context, AppSpec) (App, error) { return nopApp{}, nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, al := range s.logs {
			_ = al.close()
		}
	}()
	l := &listener{key: "http://:0", scheme: "http", srv: s}
	s.listeners = map[string]*listener{l.key: l}
	s.publish()
	req := httptest.NewRequest("GET", "http://shop.example.com/api/orders?id=1", nil)
	req.Header.Set("User-Agent", "bench/1.0")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		l.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
