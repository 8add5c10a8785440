package frontend

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// TestGlobalRulesFromCaller: the global rules are the stage the caller
// builds (WithGlobalRules), at New and again at every Reload, and a
// configuration that names them is refused when nobody builds them.
func TestGlobalRulesFromCaller(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.config"), []byte("<configuration/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := siteconfig.Parse([]byte(`
globalRules: rules.config
sites:
  - name: s
    bindings: [{scheme: http, port: 0}]
    applications: [{path: /, dir: .}]
`), filepath.Join(dir, "gatehouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(context.Context, AppSpec) (App, error) { return nopApp{}, nil }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(cfg, open, log); err == nil || !strings.Contains(err.Error(), "runs no global rules") {
		t.Errorf("New without a builder: %v, want a refusal", err)
	}

	var built []string
	stage := pipeline.StageFunc(func(*pipeline.Request) *pipeline.Result { return nil })
	var fail error
	build := func(file string) (pipeline.Stage, error) {
		built = append(built, file)
		return stage, fail
	}
	s, err := New(cfg, open, log, WithGlobalRules(build))
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 1 || built[0] != filepath.Join(dir, "rules.config") {
		t.Errorf("built %q, want the config's globalRules file once", built)
	}
	if g := s.sites["s"].global; g == nil {
		t.Error("the site does not run the built stage")
	}
	if err := s.Reload(t.Context(), cfg); err != nil || len(built) != 2 {
		t.Errorf("Reload: %v, %d builds; want the rules built again", err, len(built))
	}
	fail = errors.New("rules.config:3: bad")
	if err := s.Reload(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "rules.config:3: bad") {
		t.Errorf("Reload with rules that do not build: %v", err)
	}
}
