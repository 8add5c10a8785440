package siteconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the site-config parser: it must not
// panic, every error must name the file, and a config it accepts must pass
// Validate again. The seeds are the testdata files.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("sites: [{name: a, bindings: [{scheme: http, port: 0}], applications: [{path: /, dir: .}]}]"))
	f.Add([]byte("limits: {maxConnections: -2}"))
	f.Add([]byte("timeouts: {webSocket: -1s}\nsites: []"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
	})
}
