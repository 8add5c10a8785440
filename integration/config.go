package integration

import "os"

// Environment variable names read by [FromEnv] and [Listen].
const (
	EnvPort             = "ASPNETCORE_PORT"
	EnvHTTPPlatformPort = "HTTP_PLATFORM_PORT"
	EnvFallbackPort     = "PORT"
	EnvToken            = "ASPNETCORE_TOKEN"
	EnvPathBase         = "ASPNETCORE_APPL_PATH"
	EnvListenFDs        = "LISTEN_FDS"
	EnvListenPID        = "LISTEN_PID"
)

// Header names of the module's wire contract.
const (
	// HeaderToken carries the pairing token on every forwarded request.
	HeaderToken = "MS-ASPNETCORE-TOKEN"
	// HeaderEvent carries "shutdown" on the module's shutdown request.
	HeaderEvent = "MS-ASPNETCORE-EVENT"
	// HeaderClientCert carries the client's certificate as base64 DER.
	HeaderClientCert = "MS-ASPNETCORE-CLIENTCERT"
)

// Config is what the module tells the app through the environment. The zero
// Config turns every module-specific check off (see [Middleware]).
type Config struct {
	// Port is the TCP port the app must listen on at 127.0.0.1, as a decimal
	// string. Empty means the app was not started by the module.
	Port string

	// Token is the pairing token. When non-empty, every request must carry
	// it in MS-ASPNETCORE-TOKEN or it is rejected with 400.
	Token string

	// PathBase is the application's virtual path, such as "/myapp". Empty
	// and "/" both mean the app is at the site root.
	PathBase string
}

// FromEnv reads the Config from the process environment: Port from
// ASPNETCORE_PORT, falling back to HTTP_PLATFORM_PORT and then PORT; Token
// from ASPNETCORE_TOKEN; PathBase from ASPNETCORE_APPL_PATH. It does not
// validate the values.
func FromEnv() Config {
	return configFrom(os.Getenv)
}

func configFrom(getenv func(string) string) Config {
	return Config{
		Port:     portFrom(getenv),
		Token:    getenv(EnvToken),
		PathBase: getenv(EnvPathBase),
	}
}

func portFrom(getenv func(string) string) string {
	for _, name := range []string{EnvPort, EnvHTTPPlatformPort, EnvFallbackPort} {
		if v := getenv(name); v != "" {
			return v
		}
	}
	return ""
}

// Enabled reports whether the app runs behind the module: true only when
// Port, PathBase and Token are all non-empty, as ASP.NET Core's
// UseIISIntegration decides.
func (c Config) Enabled() bool {
	return c.Port != "" && c.PathBase != "" && c.Token != ""
}
