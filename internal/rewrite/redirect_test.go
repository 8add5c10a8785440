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
		{"spaces are escaped", `<httpRedirect enabled="true" destination="/new" />`, "/old", "/old/a%20b",
			302, "/new/a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := `<configuration><system.webServer><aspNetCore processPath="app" />` + tt.section + `</system.webServer></configuration>`
			app, err := webconfig.Decode(strings.NewReader(doc), "web.config", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			h, err := rewrite.CompileRedirect(app.HTTPRedirect, tt.app)
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
