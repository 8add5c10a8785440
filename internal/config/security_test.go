package config

import (
	"slices"
	"testing"
)

func TestHTTPAuthEnv(t *testing.T) {
	t.Parallel()
	on, off := true, false
	tests := []struct {
		name string
		site Schemes
		sec  []Security
		want string
	}{
		{"IIS default", DefaultSchemes, nil, "anonymous;"},
		{"all, ANCM's order", DefaultSchemes, []Security{{Windows: &on}, {Basic: &on}}, "windows;basic;anonymous;"},
		{"none", DefaultSchemes, []Security{{Anonymous: &off}}, "none"},
		{"site default windows", Schemes{Windows: true}, nil, "windows;"},
		{"sub-path scope does not count", DefaultSchemes, []Security{{Path: "admin", Windows: &on}}, "anonymous;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := Default("/srv/a")
			app.SiteSchemes, app.Security = tt.site, tt.sec
			env := BuildEnv([]string{EnvHTTPAuth + "=ignoredValue"}, app, "/", 0)
			if !slices.Contains(env, EnvHTTPAuth+"="+tt.want) {
				t.Errorf("env = %q, want %s=%s", env, EnvHTTPAuth, tt.want)
			}
		})
	}
}
