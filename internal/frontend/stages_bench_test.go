package frontend

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/iis"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// pageApp answers every request with a 4 KiB HTML page, as an app's view
// would, optionally with front-door stages.
type pageApp struct{ chain *pipeline.Chain }

var page = []byte(strings.Repeat("<p>Hello, Gatehouse. ", 200)[:4096])

func (pageApp) Forward(_ context.Context, w http.ResponseWriter, _ *pipeline.Request, _ io.Reader) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}
func (pageApp) Close(context.Context) error { return nil }
func (a pageApp) Chain() *pipeline.Chain    { return a.chain }
func (a pageApp) Current() pipeline.App     { return a }

// BenchmarkServeHTTPStages measures the front door with no stage, with the
// custom headers of a typical web.config, with those plus gzip dynamic
// compression, and with the URL Rewrite rules a published SPA carries
// (canonical host, API passthrough, SPA fallback that stats the app
// folder), around an app that writes a 4 KiB page.
func BenchmarkServeHTTPStages(b *testing.B) {
	rw := spaRewrite(b)
	headers := iis.NewCustomHeaders(&config.CustomHeaders{Headers: []config.HeaderField{
		{Name: "X-Content-Type-Options", Value: "nosniff"}, {Name: "X-Frame-Options", Value: "SAMEORIGIN"},
		{Name: "Strict-Transport-Security", Value: "max-age=31536000"}}})
	compress := iis.NewCompression(siteconfig.Compression{}.WithDefaults())
	for _, bc := range []struct {
		name  string
		chain *pipeline.Chain
	}{
		{"none", nil},
		{"headers", &pipeline.Chain{Out: []pipeline.OutStage{headers}}},
		{"headers+gzip", &pipeline.Chain{Out: []pipeline.OutStage{headers, compress}}},
		{"rewrite", &pipeline.Chain{In: []pipeline.Stage{rw}}},
		{"rewrite+headers+gzip", &pipeline.Chain{In: []pipeline.Stage{rw}, Out: []pipeline.OutStage{headers, compress}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "web.config"), []byte("<configuration/>"), 0o644)
			cfg, err := siteconfig.Parse([]byte("sites:\n  - name: s\n    bindings: [{scheme: http, port: 0}]\n    applications: [{path: /, dir: .}]\n"),
				filepath.Join(dir, "gatehouse.yaml"))
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(cfg, func(context.Context, AppSpec) (App, error) { return pageApp{bc.chain}, nil },
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			l := &listener{key: "http://:0", scheme: "http", srv: s}
			s.listeners = map[string]*listener{l.key: l}
			s.publish()
			req := httptest.NewRequest("GET", "http://www.example.com/products/42", nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				l.ServeHTTP(w, req)
			}
		})
	}
}

// spaRewrite is the URL Rewrite stage of a published single-page app.
func spaRewrite(b *testing.B) *rewrite.Stage {
	dir := b.TempDir()
	app, err := webconfig.Decode(strings.NewReader(`<configuration><system.webServer><aspNetCore processPath="app" />
<rewrite><rules>
<rule name="Canonical host" stopProcessing="true"><match url="(.*)" />
<conditions><add input="{HTTP_HOST}" pattern="^example\.com$" /></conditions>
<action type="Redirect" url="https://www.example.com/{R:1}" /></rule>
<rule name="API" stopProcessing="true"><match url="^api/" /><action type="None" /></rule>
<rule name="SPA fallback" stopProcessing="true"><match url=".*" /><conditions>
<add input="{REQUEST_FILENAME}" matchType="IsFile" negate="true" />
<add input="{REQUEST_FILENAME}" matchType="IsDirectory" negate="true" /></conditions>
<action type="Rewrite" url="/index.html" /></rule>
</rules></rewrite></system.webServer></configuration>`), "web.config", dir)
	if err != nil {
		b.Fatal(err)
	}
	rs, err := rewrite.Compile(app.Rewrite, rewrite.Options{AppPath: "/", Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	return rewrite.NewStage(rs, nil)
}
