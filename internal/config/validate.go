package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SettingError is one invalid setting found by Validate.
type SettingError struct {
	// Name is the web.config attribute or handlerSetting name as spelled in
	// the App field comments ("startupTimeLimit", "drainTimeout"), or
	// "environmentVariable" for an entry of Env, or "dir".
	Name string
	// Var is the variable name when Name is "environmentVariable".
	Var string
	// Msg says what is wrong, without the name.
	Msg string
}

func (e *SettingError) Error() string {
	if e.Var != "" {
		return fmt.Sprintf("%s %q: %s", e.Name, e.Var, e.Msg)
	}
	return e.Name + ": " + e.Msg
}

// Validate checks every setting against the ranges in the field comments and
// returns all problems found, joined (errors.Join), each a *SettingError; nil
// means a is usable.
//
// Validate also normalises a, so it should be called once all settings are
// in: it lower-cases HostingModel, clamps RapidFailsPerMinute above 100 to
// 100 as ANCM does, makes DrainTimeout equal ShutdownTimeLimit unless
// Set["drainTimeout"], and makes HandlerSettings non-nil. Calling it again
// is safe and gives the same result.
func (a *App) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &SettingError{Name: name, Msg: fmt.Sprintf(format, args...)})
	}
	seconds := func(name string, d, maxD time.Duration) {
		if d < 0 || d > maxD {
			bad(name, "%s is out of range (0–%d seconds)", fmtSeconds(d), int64(maxD/time.Second))
		}
	}

	if a.Dir == "" || !filepath.IsAbs(a.Dir) {
		bad("dir", "app folder %q is not an absolute path", a.Dir)
	}
	if strings.TrimSpace(a.ProcessPath) == "" {
		bad("processPath", "required attribute is missing or empty")
	}
	seconds("startupTimeLimit", a.StartupTimeLimit, MaxStartupTimeLimit)
	seconds("shutdownTimeLimit", a.ShutdownTimeLimit, MaxShutdownTimeLimit)
	if a.RapidFailsPerMinute < 0 {
		bad("rapidFailsPerMinute", "%d is out of range (0–%d)", a.RapidFailsPerMinute, MaxRapidFailsPerMinute)
	} else if a.RapidFailsPerMinute > MaxRapidFailsPerMinute {
		a.RapidFailsPerMinute = MaxRapidFailsPerMinute
	}
	if a.RequestTimeout < 0 || a.RequestTimeout > MaxRequestTimeout {
		bad("requestTimeout", "%s is out of range (00:00:00–360:00:00)", FormatTimeSpan(a.RequestTimeout))
	}
	if a.ProcessesPerApplication < 1 || a.ProcessesPerApplication > MaxProcessesPerApplication {
		bad("processesPerApplication", "%d is out of range (1–%d)", a.ProcessesPerApplication, MaxProcessesPerApplication)
	}
	switch strings.ToLower(a.HostingModel) {
	case "", "inprocess", "outofprocess":
		a.HostingModel = strings.ToLower(a.HostingModel)
	default:
		bad("hostingModel", `unknown hosting model %q; use "inprocess" or "outofprocess"`, a.HostingModel)
	}
	// StdoutLogFile only matters when logging is on ("gatehouse run" starts
	// from Default(".") and sets Dir later).
	if a.StdoutLogEnabled && a.StdoutLogFile == "" {
		bad("stdoutLogFile", "is empty while stdoutLogEnabled is true")
	} else if a.StdoutLogEnabled && !filepath.IsAbs(a.StdoutLogFile) {
		bad("stdoutLogFile", "%q is not an absolute path", a.StdoutLogFile)
	}

	errs = append(errs, a.validateEnv()...)

	nonNegative := func(name string, d time.Duration) {
		if d < 0 {
			bad(name, "%s is negative", d)
		}
	}
	nonNegative("idleTimeout", a.IdleTimeout)
	if a.ReadinessProbe != "" && !strings.HasPrefix(a.ReadinessProbe, "/") {
		bad("readinessProbe", "%q does not start with /", a.ReadinessProbe)
	}
	if a.Protocol != "" && !ValidProtocol(a.Protocol) {
		bad("protocol", "%q: want %q or %q", a.Protocol, ProtocolHTTP1, ProtocolH2C)
	}
	if a.GRPCWeb && !a.H2C() && a.Protocol != "" {
		bad("grpcWeb", "needs protocol %q (gRPC to the app is HTTP/2), not %q", ProtocolH2C, a.Protocol)
	}
	if a.MaxQueuedRequests < 0 {
		bad("maxQueuedRequests", "%d is negative", a.MaxQueuedRequests)
	}
	if !a.Set["drainTimeout"] {
		a.DrainTimeout = a.ShutdownTimeLimit
	}
	nonNegative("drainTimeout", a.DrainTimeout)
	if a.RestartMarker != "" && !filepath.IsAbs(a.RestartMarker) {
		bad("restartMarker", "%q is not an absolute path", a.RestartMarker)
	}
	if a.StdoutLogMaxSize < 0 {
		bad("stdoutLogMaxSize", "%d is negative", a.StdoutLogMaxSize)
	}
	if a.StdoutLogMaxFiles < 0 {
		bad("stdoutLogMaxFiles", "%d is negative", a.StdoutLogMaxFiles)
	}
	if a.HandlerSettings == nil {
		a.HandlerSettings = map[string]string{}
	}
	return errors.Join(errs...)
}

// validateEnv checks the names in Env and a fixed ASPNETCORE_PORT.
func (a *App) validateEnv() []error {
	var errs []error
	seen := make(map[string]bool, len(a.Env))
	for _, v := range a.Env {
		bad := func(format string, args ...any) {
			errs = append(errs, &SettingError{Name: "environmentVariable", Var: v.Name, Msg: fmt.Sprintf(format, args...)})
		}
		switch {
		case v.Name == "":
			errs = append(errs, &SettingError{Name: "environmentVariable", Msg: "name is empty"})
			continue
		case strings.ContainsAny(v.Name, "=\x00"):
			bad("name contains '=' or NUL")
		case strings.ContainsRune(v.Value, 0):
			bad("value contains NUL")
		case seen[strings.ToUpper(v.Name)]:
			bad("is listed twice (names are case-insensitive)")
		}
		seen[strings.ToUpper(v.Name)] = true
		if !strings.EqualFold(v.Name, "ASPNETCORE_PORT") || v.Value == "" {
			continue
		}
		port, err := strconv.Atoi(v.Value)
		if err != nil || port < MinFixedPort || port > MaxFixedPort {
			bad("fixed port %q is not a whole number in %d–%d", v.Value, MinFixedPort, MaxFixedPort)
		} else if a.ProcessesPerApplication > 1 {
			bad("fixed port %d cannot be shared by processesPerApplication=%d processes", port, a.ProcessesPerApplication)
		}
	}
	return errs
}

// FixedPort returns the port set by a non-empty ASPNETCORE_PORT in Env, or 0
// when the supervisor should pick one. It assumes a passed Validate.
func (a *App) FixedPort() int {
	for _, v := range a.Env {
		if strings.EqualFold(v.Name, "ASPNETCORE_PORT") && v.Value != "" {
			p, _ := strconv.Atoi(v.Value)
			return p
		}
	}
	return 0
}

func fmtSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}

// FormatTimeSpan formats d as an IIS timeSpan the way ANCM writes
// requestTimeout: [-]hh:mm:ss with hours not limited to 24 ("360:00:00"),
// and milliseconds when d is not whole seconds ("00:00:00.200").
func FormatTimeSpan(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Round(time.Millisecond)
	s := int64(d / time.Second)
	if ms := int64(d/time.Millisecond) % 1000; ms != 0 {
		return fmt.Sprintf("%s%02d:%02d:%02d.%03d", sign, s/3600, s/60%60, s%60, ms)
	}
	return fmt.Sprintf("%s%02d:%02d:%02d", sign, s/3600, s/60%60, s%60)
}
