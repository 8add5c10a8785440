package app

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// shutdownEvent reports whether cfg's processes get ANCM's shutdown event
// before SIGTERM: as web.config's shutdownEvent says, else (auto) only
// when the app is an ASP.NET Core app, the only kind that understands it;
// to any other it is a stray POST /iisintegration in its log.
func shutdownEvent(cfg *config.App) bool {
	if cfg.ShutdownEvent != nil {
		return *cfg.ShutdownEvent
	}
	return isASPNETCore(cfg)
}

// isASPNETCore reports whether cfg runs an ASP.NET Core app: processPath
// is dotnet, an argument is an app .dll, processPath is an apphost (its
// .runtimeconfig.json is beside it), or web.config sets ASPNETCORE_
// variables.
func isASPNETCore(cfg *config.App) bool {
	base := strings.ToLower(filepath.Base(cfg.ProcessPath))
	if base == "dotnet" || base == "dotnet.exe" {
		return true
	}
	for _, a := range cfg.Args {
		if strings.HasSuffix(strings.ToLower(a), ".dll") {
			return true
		}
	}
	for _, v := range cfg.Env {
		if strings.HasPrefix(strings.ToUpper(v.Name), "ASPNETCORE_") {
			return true
		}
	}
	if cfg.ProcessPath == "" || strings.Contains(cfg.ProcessPath, "%") {
		return false
	}
	path := cfg.ProcessPath
	if !filepath.IsAbs(path) {
		path = filepath.Join(cfg.Dir, path)
	}
	_, err := os.Stat(strings.TrimSuffix(path, ".exe") + ".runtimeconfig.json")
	return err == nil
}
