package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	a := Default("/srv/app")
	checks := []struct {
		name      string
		got, want any
	}{
		{"StartupTimeLimit", a.StartupTimeLimit, 120 * time.Second},
		{"ShutdownTimeLimit", a.ShutdownTimeLimit, 10 * time.Second},
		{"RapidFailsPerMinute", a.RapidFailsPerMinute, 10},
		{"RequestTimeout", a.RequestTimeout, 2 * time.Minute},
		{"StdoutLogFile", a.StdoutLogFile, "/srv/app/aspnetcore-stdout"},
		{"ProcessesPerApplication", a.ProcessesPerApplication, 1},
		{"ForwardWindowsAuthToken", a.ForwardWindowsAuthToken, true},
		{"MaxQueuedRequests", a.MaxQueuedRequests, 1000},
		{"RetryIdempotentRequests", a.RetryIdempotentRequests, true},
		{"DrainTimeout", a.DrainTimeout, 10 * time.Second},
		{"HandlerSettings non-nil", a.HandlerSettings != nil, true},
		{"Set non-nil", a.Set != nil, true},
		{"StdoutLogEnabled", a.StdoutLogEnabled, false},
		{"HostingModel", a.HostingModel, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "processPath") {
		t.Errorf("Validate of Default = %v; want processPath required", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(a *App)
		want   string // substring of the error; "" for none
		check  func(t *testing.T, a *App)
	}{
		{"defaults with processPath", func(a *App) {}, "", nil},
		{"no processPath", func(a *App) { a.ProcessPath = " " }, "processPath: required", nil},
		{"relative dir", func(a *App) { a.Dir = "app" }, `dir: app folder "app" is not an absolute path`, nil},
		{"startup 0", func(a *App) { a.StartupTimeLimit = 0 }, "", nil},
		{"startup 3600", func(a *App) { a.StartupTimeLimit = 3600 * time.Second }, "", nil},
		{"startup 3601", func(a *App) { a.StartupTimeLimit = 3601 * time.Second }, "startupTimeLimit: 3601 is out of range (0–3600 seconds)", nil},
		{"shutdown 601", func(a *App) { a.ShutdownTimeLimit = 601 * time.Second }, "shutdownTimeLimit: 601 is out of range (0–600 seconds)", nil},
		{"shutdown negative", func(a *App) { a.ShutdownTimeLimit = -time.Second }, "shutdownTimeLimit: -1 is out of range", nil},
		{"rapid fails clamped", func(a *App) { a.RapidFailsPerMinute = 101 }, "", func(t *testing.T, a *App) {
			if a.RapidFailsPerMinute != 100 {
				t.Errorf("RapidFailsPerMinute = %d", a.RapidFailsPerMinute)
			}
		}},
		{"rapid fails negative", func(a *App) { a.RapidFailsPerMinute = -1 }, "rapidFailsPerMinute: -1 is out of range (0–100)", nil},
		{"request timeout 360h", func(a *App) { a.RequestTimeout = 360 * time.Hour }, "", nil},
		{"request timeout over 360h", func(a *App) { a.RequestTimeout = 360*time.Hour + time.Second }, "requestTimeout: 360:00:01 is out of range", nil},
		{"processes 0", func(a *App) { a.ProcessesPerApplication = 0 }, "processesPerApplication: 0 is out of range (1–100)", nil},
		{"processes 101", func(a *App) { a.ProcessesPerApplication = 101 }, "processesPerApplication: 101 is out of range", nil},
		{"hosting model case", func(a *App) { a.HostingModel = "OutOfProcess" }, "", func(t *testing.T, a *App) {
			if a.HostingModel != "outofprocess" {
				t.Errorf("HostingModel = %q", a.HostingModel)
			}
		}},
		{"hosting model unknown", func(a *App) { a.HostingModel = "both" }, `hostingModel: unknown hosting model "both"`, nil},
		{"fixed port ok", func(a *App) { a.Env = []EnvVar{{"aspnetcore_port", "48000"}} }, "", func(t *testing.T, a *App) {
			if a.FixedPort() != 48000 {
				t.Errorf("FixedPort = %d", a.FixedPort())
			}
		}},
		{"fixed port empty", func(a *App) { a.Env = []EnvVar{{"ASPNETCORE_PORT", ""}}; a.ProcessesPerApplication = 4 }, "", nil},
		{"fixed port low", func(a *App) { a.Env = []EnvVar{{"ASPNETCORE_PORT", "1024"}} }, `environmentVariable "ASPNETCORE_PORT": fixed port "1024" is not a whole number in 1025–48000`, nil},
		{"fixed port high", func(a *App) { a.Env = []EnvVar{{"ASPNETCORE_PORT", "48001"}} }, "1025–48000", nil},
		{"fixed port text", func(a *App) { a.Env = []EnvVar{{"ASPNETCORE_PORT", "5000x"}} }, "1025–48000", nil},
		{"fixed port shared", func(a *App) { a.Env = []EnvVar{{"ASPNETCORE_PORT", "5000"}}; a.ProcessesPerApplication = 2 }, "cannot be shared by processesPerApplication=2", nil},
		{"env empty name", func(a *App) { a.Env = []EnvVar{{"", "x"}} }, "environmentVariable: name is empty", nil},
		{"env name with =", func(a *App) { a.Env = []EnvVar{{"A=B", "x"}} }, "name contains '='", nil},
		{"env duplicate", func(a *App) { a.Env = []EnvVar{{"A", "1"}, {"a", "2"}} }, `environmentVariable "a": is listed twice`, nil},
		{"log enabled without file", func(a *App) { a.StdoutLogEnabled = true; a.StdoutLogFile = "" }, "stdoutLogFile: is empty", nil},
		{"relative log file", func(a *App) { a.StdoutLogEnabled = true; a.StdoutLogFile = "logs/x" }, "stdoutLogFile: \"logs/x\" is not an absolute path", nil},
		{"relative log file unused", func(a *App) { a.StdoutLogFile = "logs/x" }, "", nil},
		{"probe without slash", func(a *App) { a.ReadinessProbe = "healthz" }, "readinessProbe", nil},
		{"negative queue", func(a *App) { a.MaxQueuedRequests = -1 }, "maxQueuedRequests: -1 is negative", nil},
		{"negative idle", func(a *App) { a.IdleTimeout = -time.Second }, "idleTimeout: -1s is negative", nil},
		{"relative restart marker", func(a *App) { a.RestartMarker = "x" }, "restartMarker", nil},
		{"negative log size", func(a *App) { a.StdoutLogMaxSize = -1 }, "stdoutLogMaxSize", nil},
		{"negative log files", func(a *App) { a.StdoutLogMaxFiles = -1 }, "stdoutLogMaxFiles", nil},
		{"drain follows shutdown", func(a *App) { a.ShutdownTimeLimit = 30 * time.Second }, "", func(t *testing.T, a *App) {
			if a.DrainTimeout != 30*time.Second {
				t.Errorf("DrainTimeout = %v", a.DrainTimeout)
			}
		}},
		{"drain set explicitly", func(a *App) { a.DrainTimeout = 5 * time.Second; a.Set["drainTimeout"] = true }, "", func(t *testing.T, a *App) {
			if a.DrainTimeout != 5*time.Second {
				t.Errorf("DrainTimeout = %v", a.DrainTimeout)
			}
		}},
		{"nil maps", func(a *App) { a.HandlerSettings, a.Set = nil, nil }, "", func(t *testing.T, a *App) {
			if a.HandlerSettings == nil {
				t.Error("HandlerSettings is nil")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := Default(filepath.FromSlash("/srv/app"))
			a.ProcessPath = "dotnet"
			tt.modify(a)
			err := a.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v; want %q", err, tt.want)
			case err != nil:
				if _, ok := errors.AsType[*SettingError](err); !ok {
					t.Errorf("error %T holds no *SettingError", err)
				}
			}
			if tt.check != nil {
				tt.check(t, a)
			}
			if err2 := a.Validate(); (err == nil) != (err2 == nil) {
				t.Errorf("second Validate() = %v; first %v", err2, err)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	t.Parallel()
	a := Default("/a")
	a.StartupTimeLimit = time.Hour * 2
	err := a.Validate()
	for _, want := range []string{"processPath", "startupTimeLimit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to mention %s", err, want)
		}
	}
}
