package siteconfig_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.* files")

// TestGolden parses every testdata/*.yaml. A good file must match its
// .golden.json; a file named bad-* must fail with the text in .golden.err.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := siteconfig.Parse(data, file)
			var got []byte
			var golden string
			if strings.HasPrefix(name, "bad-") {
				golden = strings.TrimSuffix(file, ".yaml") + ".golden.err"
				if err == nil {
					t.Fatalf("Parse succeeded, want an error")
				}
				got = []byte(strings.ReplaceAll(err.Error(), abs, "$TESTDATA") + "\n")
			} else {
				golden = strings.TrimSuffix(file, ".yaml") + ".golden.json"
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				got, err = json.MarshalIndent(cfg, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(bytes.ReplaceAll(got, []byte(abs), []byte("$TESTDATA")), '\n')
			}
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -update to accept):\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestLoadResolvesRelativeToFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := filepath.Join(dir, "site", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "web.config"), []byte("<configuration/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "site", "gatehouse.yaml")
	yaml := "sites:\n  - name: s\n    bindings: [{scheme: http, port: 0}]\n    applications: [{path: /, dir: app}]\n    accessLog: {path: access.log}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := siteconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sites[0].Applications[0].Dir; got != app {
		t.Errorf("dir = %q, want %q", got, app)
	}
	if got, want := cfg.Sites[0].AccessLog.Path, filepath.Join(dir, "site", "access.log"); got != want {
		t.Errorf("access log = %q, want %q", got, want)
	}
	if cfg.Sites[0].AccessLog.Format != "w3c" {
		t.Errorf("format = %q, want w3c", cfg.Sites[0].AccessLog.Format)
	}
	if _, err := siteconfig.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestSingle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := siteconfig.Single(dir, "127.0.0.1:0")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no web.config") {
		t.Fatalf("Validate without web.config = %v, want a no web.config error", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.config"), []byte("<configuration/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b := cfg.Sites[0].Bindings[0]
	if b.Scheme != "http" || b.Address != "127.0.0.1" || b.Port != 0 || b.Name != "default/0" {
		t.Errorf("binding = %+v", b)
	}
	if cfg.Limits.MaxAllowedContentLength != 30000000 || cfg.Limits.MaxURL != 4096 ||
		cfg.Limits.MaxQueryString != 2048 || cfg.Limits.MaxRequestBytes != 16384 {
		t.Errorf("limits = %+v, want the IIS defaults", cfg.Limits)
	}
}

func TestHTTPSPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ports []int // https binding ports
		want  int
	}{
		{"none", nil, 0},
		{"one", []int{443}, 443},
		{"same twice", []int{8443, 8443}, 8443},
		{"different", []int{443, 8443}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := siteconfig.Site{Bindings: []siteconfig.Binding{{Scheme: "http", Port: 80}}}
			for _, p := range tt.ports {
				s.Bindings = append(s.Bindings, siteconfig.Binding{Scheme: "https", Port: p})
			}
			if got := s.HTTPSPort(); got != tt.want {
				t.Errorf("HTTPSPort() = %d, want %d", got, tt.want)
			}
		})
	}
}
