package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeWatch: with serve --watch, a changed file in the app's folder
// (a new folder's too) recycles the app once per burst; log files do not
// count.
func TestServeWatch(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	g := start(t, dir, "serve", "--watch", dir)
	p1 := g.pid()
	writeFile(t, filepath.Join(dir, "app.log"), "not code\n")
	writeFile(t, filepath.Join(dir, "main.js"), "v2\n") // at the root, beside the default stdout log prefix
	waitFor(t, 20*time.Second, "the recycle after the change", func() bool { return g.pid() != p1 })
	rec := g.logs.find("the app's files changed; recycling")
	if rec == nil || !strings.Contains(fmt.Sprint(rec["files"]), "main.js") || strings.Contains(fmt.Sprint(rec["files"]), "app.log") {
		t.Errorf("recycle line %v: want main.js and not app.log among the files", rec)
	}
	p2 := g.pid()
	writeFile(t, filepath.Join(dir, "src", "lib", "util.js"), "v3\n") // in a folder made after the start
	waitFor(t, 20*time.Second, "the recycle after a change in a new folder", func() bool { return g.pid() != p2 })
}
