package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestShutdownEvent: ANCM's shutdown event goes to ASP.NET Core apps
// (dotnet, an app .dll, an apphost, ASPNETCORE_ variables) and, unless
// web.config's shutdownEvent says otherwise, to no other app.
func TestShutdownEvent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "MyApp.runtimeconfig.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	tests := []struct {
		name string
		cfg  config.App
		want bool
	}{
		{"dotnet", config.App{ProcessPath: "/usr/bin/dotnet", Args: []string{"MyApp.dll"}}, true},
		{"app dll", config.App{ProcessPath: "/opt/dotnet/dotnet-8", Args: []string{"./MyApp.DLL"}}, true},
		{"apphost", config.App{Dir: dir, ProcessPath: "./MyApp"}, true},
		{"ASPNETCORE_ variable", config.App{ProcessPath: "node", Env: []config.EnvVar{{Name: "ASPNETCORE_ENVIRONMENT", Value: "Production"}}}, true},
		{"node", config.App{Dir: dir, ProcessPath: "node", Args: []string{"server.js"}}, false},
		{"python", config.App{Dir: dir, ProcessPath: "/usr/bin/python3", Args: []string{"-m", "gunicorn"}}, false},
		{"asked for", config.App{ProcessPath: "node", ShutdownEvent: &yes}, true},
		{"turned off", config.App{ProcessPath: "dotnet", ShutdownEvent: &no}, false},
	}
	for _, tt := range tests {
		if got := shutdownEvent(&tt.cfg); got != tt.want {
			t.Errorf("%s: shutdownEvent = %v, want %v", tt.name, got, tt.want)
		}
	}
}
