package config

import (
	"path/filepath"
	"time"
)

// Defaults of the <aspNetCore> attributes and Gatehouse's handlerSettings,
// as documented on the App fields.
const (
	DefaultStartupTimeLimit        = 120 * time.Second
	DefaultShutdownTimeLimit       = 10 * time.Second
	DefaultRapidFailsPerMinute     = 10
	DefaultRequestTimeout          = 2 * time.Minute
	DefaultStdoutLogFile           = "aspnetcore-stdout"
	DefaultProcessesPerApplication = 1
	DefaultMaxQueuedRequests       = 1000
)

// Limits enforced by Validate.
const (
	MaxStartupTimeLimit        = 3600 * time.Second
	MaxShutdownTimeLimit       = 600 * time.Second
	MaxRapidFailsPerMinute     = 100
	MaxRequestTimeout          = 360 * time.Hour
	MaxProcessesPerApplication = 100
	// MinFixedPort and MaxFixedPort bound an ASPNETCORE_PORT set in
	// <environmentVariables>, as ANCM does.
	MinFixedPort = 1025
	MaxFixedPort = 48000
)

// Default returns the settings of an app in dir (which should be absolute)
// when its web.config sets nothing but processPath: every field holds the
// default named in its comment, DrainTimeout equals ShutdownTimeLimit,
// HandlerSettings and Set are empty non-nil maps. ProcessPath is empty, so
// the result does not pass Validate until it is set.
func Default(dir string) *App {
	return &App{
		Dir:                     dir,
		StartupTimeLimit:        DefaultStartupTimeLimit,
		ShutdownTimeLimit:       DefaultShutdownTimeLimit,
		RapidFailsPerMinute:     DefaultRapidFailsPerMinute,
		RequestTimeout:          DefaultRequestTimeout,
		StdoutLogFile:           filepath.Join(dir, DefaultStdoutLogFile),
		ProcessesPerApplication: DefaultProcessesPerApplication,
		ForwardWindowsAuthToken: true,
		HandlerSettings:         map[string]string{},
		MaxQueuedRequests:       DefaultMaxQueuedRequests,
		RetryIdempotentRequests: true,
		DrainTimeout:            DefaultShutdownTimeLimit,
		Set:                     map[string]bool{},
		SiteSchemes:             DefaultSchemes,
	}
}
