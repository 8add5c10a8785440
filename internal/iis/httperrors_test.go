package iis

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestHTTPErrorsPage(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "404.htm"), []byte("not found page"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.htm"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.htm"), filepath.Join(dir, "escape.htm")); err != nil {
		t.Fatal(err)
	}
	pages := []config.ErrorPage{
		{Status: 404, Substatus: -1, Mode: "File", Path: "404.htm"},
		{Status: 404, Substatus: 7, Mode: "ExecuteURL", Path: "/blocked"},
		{Status: 500, Substatus: -1, Mode: "File", Path: "escape.htm"},
		{Status: 401, Substatus: -1, Mode: "Redirect", Path: "/login"},
	}
	r := &pipeline.Request{}
	log := slog.New(slog.DiscardHandler)
	auto := NewHTTPErrors(&config.HTTPErrors{ExistingResponse: "Auto", Pages: pages}, config.ErrorModeCustom, dir, nil, log)
	replace := NewHTTPErrors(&config.HTTPErrors{ExistingResponse: "Replace", Pages: pages}, config.ErrorModeCustom, dir, nil, log)
	tests := []struct {
		name        string
		e           *HTTPErrors
		status, sub int
		skip        bool
		want        string // "" none; "body:…", "exec:…", "loc:…", "standard"
	}{
		{"own 404 gets the file", auto, 404, 8, false, "body:not found page"},
		{"sub-status entry first", auto, 404, 7, false, "exec:/blocked"},
		{"app's 404 kept under Auto", auto, 404, 0, true, ""},
		{"app's 404 replaced under Replace", replace, 404, 0, true, "body:not found page"},
		{"no page for own 403", replace, 403, 0, false, ""},
		{"standard page for the app's 403 under Replace", replace, 403, 0, true, "standard"},
		{"redirect", auto, 401, 0, false, "loc:/login"},
		{"symlink out of the folder is not read", auto, 500, 0, false, ""},
		{"symlink out: standard page for the app's 500 under Replace", replace, 500, 0, true, "standard"},
		{"success untouched", replace, 200, 0, true, ""},
	}
	for _, tt := range tests {
		got := ""
		if pg := tt.e.Page(r, tt.status, tt.sub, tt.skip); pg != nil {
			switch {
			case pg.Body != nil:
				got = "body:" + string(pg.Body)
			case pg.ExecuteURL != "":
				got = "exec:" + pg.ExecuteURL
			case pg.Location != "":
				got = "loc:" + pg.Location
			case pg.Standard:
				got = "standard"
			}
		}
		if got != tt.want {
			t.Errorf("%s: page %q, want %q", tt.name, got, tt.want)
		}
	}

	local := func(*pipeline.Request) bool { return true }
	if e := NewHTTPErrors(&config.HTTPErrors{ExistingResponse: "Auto", Pages: pages}, config.ErrorModeDetailedLocalOnly, dir, local, log); e.Page(r, 404, 0, false) != nil {
		t.Errorf("DetailedLocalOnly: a local client got a custom page")
	}
	if NewHTTPErrors(&config.HTTPErrors{ExistingResponse: "Replace", Pages: pages}, config.ErrorModeDetailed, dir, local, log) != nil {
		t.Errorf("Detailed: custom pages in use")
	}
	if NewHTTPErrors(&config.HTTPErrors{ExistingResponse: "PassThrough", Pages: pages}, config.ErrorModeCustom, dir, local, log) != nil {
		t.Errorf("PassThrough: custom pages in use")
	}
}
