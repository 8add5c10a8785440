package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPrintsBindings: gatehouse check of a site config names every
// binding (scheme, address, port, host) besides the apps.
func TestCheckPrintsBindings(t *testing.T) {
	t.Parallel()
	app := writeApp(t, testappAttrs(""), "")
	cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfg, fmt.Sprintf(`sites:
  - name: shop
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 8081, host: shop.example.test}
      - {scheme: http, port: 8082}
    applications:
      - {path: /, dir: %s}
`, app))
	code, out := ghctl(t, "check", cfg)
	for _, want := range []string{"binding shop/0: http://127.0.0.1:8081 host shop.example.test", "binding shop/1: http://:8082 host *", "OK"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
}

// TestMetricsHelpNamesHealth: serve's --metrics help lists the health
// endpoints it serves, which the Kubernetes example probes.
func TestMetricsHelpNamesHealth(t *testing.T) {
	t.Parallel()
	_, out := ghctl(t, "serve", "--help")
	i := strings.Index(out, "-metrics")
	if i < 0 || !strings.Contains(out[i:min(i+400, len(out))], "/readyz") || !strings.Contains(out[i:min(i+400, len(out))], "/healthz") {
		t.Errorf("serve --help: --metrics does not name /readyz and /healthz:\n%s", out)
	}
}

// TestVersionStampedWithoutVCS: a build without VCS information
// (-buildvcs=false) still prints the commit the Makefile stamps.
func TestVersionStampedWithoutVCS(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X main.commit=0123456789ab", "-o", bin, "../../cmd/gatehouse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revision 0123456789ab") {
		t.Errorf("version: %v %q, want the stamped revision", err, out)
	}
}
