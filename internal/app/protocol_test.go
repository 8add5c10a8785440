package app

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestInheritProtocol checks that the site config's protocol applies to an
// app whose web.config does not set one, and that web.config's wins.
func TestInheritProtocol(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		web, site, want string
		set             bool
	}{
		{"", "", "", false},
		{"", "h2c", "h2c", false},
		{"http1", "h2c", "http1", true},
		{"h2c", "", "h2c", true},
	} {
		cfg := &config.App{Protocol: tt.web, Set: map[string]bool{"protocol": tt.set}}
		inheritProtocol(cfg, tt.site)
		if cfg.Protocol != tt.want {
			t.Errorf("web.config %q (set %v), site %q: protocol %q, want %q", tt.web, tt.set, tt.site, cfg.Protocol, tt.want)
		}
	}
}
