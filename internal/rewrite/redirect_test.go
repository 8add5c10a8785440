package rewrite_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

func TestRedirector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, section, app, target string
		status                     int
		location                   string // "" means no redirect
	}{
		{"relative destination keeps the path below the app and the query",
			`<httpRedirect enabled="true" destination="https://new.example.com/store/" />`, "/shop", "/shop/a/b?x=1",
			302, "https://new.example.com/store/a/b?x=1"},
		{"the app itself", `<httpRedirect enabled="true" destination="https://new.example.com/store" httpResponseStatus="Permanent" />`, "/shop", "/shop",
			301, "https://new.example.com/store"},
		{"other apps are not redirected", `<httpRedirect enabled="true" destination="https://new.example.com/" />`, "/shop", "/shopping/x",
			0, ""},
		{"exact destination", `<httpRedirect enabled="true" destination="https://new.example.com/" exactDestination="true" httpResponseStatus="Temporary" />`, "/", "/a/b?x=1",
			307, "https://new.example.com/"},
		{"exact destination with $S and $Q", `<httpRedirect enabled="true" destination="/new$S$Q" exactDestination="true" httpResponseStatus="PermanentRedirect" />`, "/old", "/old/a/b?x=1",
			308, "/new/a/b?x=1"},
		{"exact destination with $P", `<httpRedirect enabled="true" destination="/search.aspx?from=old&amp;$P" exactDestination="true" />`, "/old", "/old/x?q=1",
			302, "/search.aspx?from=old&q=1"},
		{"exact destination with $V", `<httpRedirect enabled="true" destination="https://archive.example.com$V" exactDestination="true" />`, "/", "/a/b?x=1",
			302, "https://archive.example.com/a/b"},
		{"childOnly: content directly in the folder", `<httpRedirect enabled="true" destination="/new" childOnly="true" />`, "/old", "/old/page.htm",
			302, "/new/page.htm"},
		{"childOnly: not in subfolders", `<httpRedirect enabled="true" destination="/new" childOnly="true" />`, "/old", "/old/sub/page.htm",
			0, ""},
		{"wildcard", `<httpRedirect enabled="true" destination="/other"><add wildcard="*.PHP" destination="/index.html" /></httpRedirect>`, "/", "/forum/view.php?t=1",
			302, "/index.html"},
		{"no loop into a destination inside the app", `<httpRedirect enabled="true" destination="/new" />`, "/", "/new/x",
			0, ""},
		{"no loop to itself", `<httpRedirect enabled="true" destination="/index.html" exactDestination="true" />`, "/", "/index.html",
			0, ""},
		{"disabled", `<httpRedirect enabled="false" destination="/x" />`, "/", "/a",
			0, ""},
		// <location path> sections (after "|"), the way IIS sites redirect
		// single pages or keep a folder out of a site-wide redirect.
		{"a page redirected by its location",
			`|<location path="old-page.htm"><system.webServer><httpRedirect enabled="true" destination="/new-page" exactDestination="true" httpResponseStatus="Permanent" /></system.webServer></location>`,
			"/", "/Old-Page.htm?x", 301, "/new-page"},
		{"other pages are not",
			`|<location path="old-page.htm"><system.webServer><httpRedirect enabled="true" destination="/new-page" exactDestination="true" /></system.webServer></location>`,
			"/", "/old-page.html", 0, ""},
		{"a folder kept out of an app-wide redirect",
			`<httpRedirect enabled="true" destination="https://new.example.com/" />|<location path="keep/this"><system.webServer><httpRedirect enabled="false" /></system.webServer></location>`,
			"/app", "/app/keep/this/x", 0, ""},
		{"the rest of the app is redirected",
			`<httpRedirect enabled="true" destination="https://new.example.com/" />|<location path="keep/this"><system.webServer><httpRedirect enabled="false" /></system.webServer></location>`,
			"/app", "/app/keep/that", 302, "https://new.example.com/keep/that"},
		{"a location takes what it does not write from the app's section, its path is the base",
			`<httpRedirect enabled="false" destination="https://new.example.com/" httpResponseStatus="Permanent" />|<location path="legacy"><system.webServer><httpRedirect enabled="true" /></system.webServer></location>`,
			"/", "/legacy/a/b?q", 301, "https://new.example.com/a/b?q"},
		{"spaces are escaped", `<httpRedirect enabled="true" destination="/new" />`, "/old", "/old/a%20b",
			302, "/new/a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			section, locations, _ := strings.Cut(tt.section, "|")
			doc := `<configuration><system.webServer><aspNetCore processPath="app" />` + section + `</system.webServer>` + locations + `</configuration>`
			app, err := webconfig.Decode(strings.NewReader(doc), "web.config", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			h, err := rewrite.CompileRedirect(app.HTTPRedirects, tt.app)
			if err != nil {
				t.Fatal(err)
			}
			got := h.Evaluate(request(tt.target))
			if tt.location == "" {
				if got.Action != rewrite.None {
					t.Errorf("%s: %+v, want no redirect", tt.target, got)
				}
				return
			}
			if got.Action != rewrite.Redirect || got.Status != tt.status || got.Location != tt.location {
				t.Errorf("%s: %+v, want %d %s", tt.target, got, tt.status, tt.location)
			}
		})
	}
}
