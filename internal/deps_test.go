// Package internal_test holds the checks of the module's layering: which
// of its packages may depend on which.
package internal_test

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gatehouse/gatehouse/"

// layering is the dependency rules, direct and indirect, of production code
// (tests may import more).
var layering = []struct {
	pkg string
	// only, when set, is the module's packages pkg may depend on.
	only []string
	// never is the module's packages pkg must not depend on.
	never []string
	// stdlib: pkg depends on the standard library only (a library for apps,
	// which must not pull in anything).
	stdlib bool
}{
	// Parsing web.config is data in, config types out: the rules it reads
	// compile where the app's stages are built.
	{pkg: "internal/config/webconfig", only: []string{"internal/config"}},
	// The process manager knows nothing of HTTP forwarding or the front
	// door; the proxy nothing of the front door.
	{pkg: "internal/supervisor", never: []string{"internal/proxy", "internal/frontend"}},
	{pkg: "internal/proxy", never: []string{"internal/frontend"}},
	// The HTTP/2 server is a protocol engine: it knows nothing of sites,
	// apps or the front door. The connection mechanics it shares with the
	// proxy's HTTP/2 client, and the request-target escape it shares with
	// the HTTP/1.1 parser, depend on nothing of the module either, nor
	// does the runtime trick its streams' goroutines start with.
	{pkg: "internal/h2srv", only: []string{"internal/h2conn", "internal/reqtarget", "internal/growstack"}},
	{pkg: "internal/h2conn", only: []string{}},
	{pkg: "internal/reqtarget", only: []string{}},
	{pkg: "internal/growstack", only: []string{}},
	// The front door reaches apps and their rules only through the
	// pipeline's types, given to it by the caller.
	{pkg: "internal/frontend", never: []string{"internal/config/webconfig", "internal/rewrite", "internal/app"}},
	{pkg: "integration", stdlib: true},
}

// TestLayering checks the dependency rules with go list.
func TestLayering(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	for _, r := range layering {
		t.Run(r.pkg, func(t *testing.T) {
			t.Parallel()
			out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", module+r.pkg).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", r.pkg, err)
			}
			ours := map[string]bool{}
			listed := false
			for line := range strings.Lines(string(out)) {
				path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
				if path == module+r.pkg {
					listed = true
					continue
				}
				if r.stdlib && std != "true" {
					t.Errorf("%s depends on %s, not of the standard library", r.pkg, path)
				}
				if rel, ok := strings.CutPrefix(path, module); ok {
					ours[rel] = true
				}
			}
			if !listed {
				t.Fatalf("go list did not list %s itself:\n%s", r.pkg, out)
			}
			for _, n := range r.never {
				if ours[n] {
					t.Errorf("%s depends on %s", r.pkg, n)
				}
			}
			if r.only != nil {
				for _, dep := range slices.Sorted(maps.Keys(ours)) {
					if !slices.Contains(r.only, dep) {
						t.Errorf("%s depends on %s; of this module it may depend on %s only", r.pkg, dep, strings.Join(r.only, ", "))
					}
				}
			}
		})
	}
}
