package siteconfig

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestProxyUpstreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.config"), []byte("<configuration/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	sites := "\nsites:\n  - name: a\n    bindings: [{scheme: http, port: 8080}]\n    applications: [{path: /, dir: " + dir + "}]\n"
	c, err := Parse([]byte(`proxyUpstreams: ["127.0.0.1:3000", "Node.Internal:8080", "[::1]:9000"]`+sites), "gatehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Upstreams(), []string{"127.0.0.1:3000", "node.internal:8080", "[::1]:9000"}; !slices.Equal(got, want) {
		t.Errorf("Upstreams() = %q, want %q", got, want)
	}
	for _, bad := range []string{"127.0.0.1", "http://127.0.0.1:3000", "host:0", "host:http"} {
		_, err := Parse([]byte(`proxyUpstreams: ["`+bad+`"]`+sites), "gatehouse.yaml")
		if err == nil || !strings.Contains(err.Error(), "is not host:port") {
			t.Errorf("proxyUpstreams %q: err = %v, want it refused", bad, err)
		}
	}
}
