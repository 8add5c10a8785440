// Package config holds the settings of one application, as read from the
// <aspNetCore> element of its web.config (see package webconfig) or built from
// a command line by "gatehouse run". It is a leaf package.
package config

import "time"

// App is the effective configuration of one application. The zero value is
// not useful; start from Default and overwrite what the file sets.
//
// Field comments are the user manual: each names the web.config attribute or
// handlerSetting, its default, unit and range.
type App struct {
	// Dir is the absolute path of the app folder (the folder holding
	// web.config). The process runs there; relative paths resolve against it.
	Dir string
	// File is the web.config path the settings came from ("" for "gatehouse run").
	File string

	// ProcessPath (processPath, required) is the program to run, as written,
	// %VAR% not yet expanded. Windows spellings (".\MyApp.exe", "dotnet.exe")
	// are accepted; see ResolveProgram.
	ProcessPath string
	// Arguments (arguments, default "") is the argument string as written,
	// %VAR% not yet expanded. Args is its split, path-normalised form.
	Arguments string
	Args      []string

	// StartupTimeLimit (startupTimeLimit, seconds, default 120, 0–3600): how
	// long a starting process may take to become ready. 0 means "check once".
	StartupTimeLimit time.Duration
	// ShutdownTimeLimit (shutdownTimeLimit, seconds, default 10, 0–600): how
	// long a stopping process gets after the shutdown event and SIGTERM before
	// SIGKILL. 0 kills at once.
	ShutdownTimeLimit time.Duration
	// RapidFailsPerMinute (rapidFailsPerMinute, default 10, 0–100; larger
	// values are clamped to 100): crashes allowed per one-minute window before
	// restarts are refused until the window ends.
	RapidFailsPerMinute int
	// RequestTimeout (requestTimeout, hh:mm:ss, default 00:02:00, at most
	// 360:00:00): inactivity timeout while waiting for the app (connect, send,
	// response headers, each body read). 0 means no timeout.
	RequestTimeout time.Duration
	// StdoutLogEnabled (stdoutLogEnabled, default false): write the app's
	// stdout and stderr to StdoutLogFile_<yyyyMMddHHmmss>_<pid>.log.
	StdoutLogEnabled bool
	// StdoutLogFile (stdoutLogFile, default ".\aspnetcore-stdout"): the log
	// file prefix, as an absolute path (%VAR% expanded, a leading `\\?\`
	// dropped, backslashes turned into slashes, resolved against Dir).
	StdoutLogFile string
	// ProcessesPerApplication (processesPerApplication, default 1, 1–100).
	ProcessesPerApplication int
	// DisableStartUpErrorPage (disableStartUpErrorPage, default false): send
	// 502.5 with no body instead of the startup error page.
	DisableStartUpErrorPage bool
	// ForwardWindowsAuthToken (forwardWindowsAuthToken, default true): hand
	// the authenticated user to the app in the MS-ASPNETCORE-USER,
	// -AUTHTYPE, -GROUPS and -GROUPSIDS headers (Linux has no Windows
	// token handle to forward; see docs/authentication.md). false
	// forwards no identity.
	ForwardWindowsAuthToken bool
	// HostingModel (hostingModel, "" | "outofprocess" | "inprocess", any
	// case, lower-cased by Validate). Gatehouse always runs the app out of
	// process.
	HostingModel string

	// Env holds <environmentVariables> in file order, values %VAR%-expanded
	// against Gatehouse's environment. Names are unique without regard to
	// case. <clear/> drops the entries listed before it (the entries IIS
	// would inherit from parent configs); it does not clear the environment
	// the app inherits from Gatehouse.
	Env []EnvVar
	// HandlerSettings holds <handlerSettings>, keys lower-cased.
	HandlerSettings map[string]string

	// ErrorMode (<httpErrors errorMode>, "DetailedLocalOnly" | "Detailed" |
	// "Custom", default "" = DetailedLocalOnly): who sees the details on
	// the 502.5 and 503 pages Gatehouse writes for the app.
	ErrorMode ErrorMode
	// HTTPErrors is the rest of <httpErrors>: the custom error pages; nil
	// when the file sets none.
	HTTPErrors *HTTPErrors

	// The IIS modules of <system.webServer> besides <aspNetCore> (see
	// iis.go); each is nil when the file lacks the section.

	// RequestFiltering is <security><requestFiltering>.
	RequestFiltering *RequestFiltering
	// IPSecurity is <security><ipSecurity>.
	IPSecurity *IPSecurity
	// DynamicIPSecurity is <security><dynamicIpSecurity>.
	DynamicIPSecurity *DynamicIPSecurity
	// Locations are the <location path="sub"> elements with request
	// filtering, custom headers, IP restrictions or URL compression, in
	// file order.
	Locations []Location
	// CustomHeaders is <httpProtocol> (customHeaders, redirectHeaders).
	CustomHeaders *CustomHeaders
	// URLCompression is <urlCompression>; nil leaves compression to the site
	// config.
	URLCompression *URLCompression

	// Gatehouse extensions, set in <handlerSettings> (names as in ANCM's
	// style). See docs/web-config.md for each.

	// ForwardResponseConnectionHeader (forwardResponseConnectionHeader,
	// default false): pass the app's Connection response header through.
	ForwardResponseConnectionHeader bool
	// IdleTimeout (idleTimeout, hh:mm:ss or seconds, default 0 = off): stop the
	// app after this long without requests; the next request starts it.
	IdleTimeout time.Duration
	// ReadinessProbe (readinessProbe, default "" = port accepts connections):
	// a path, e.g. "/healthz", that must answer 2xx before the process gets
	// requests.
	ReadinessProbe string
	// NotifyReady (notifyReady, default false): the process is ready when it
	// sends READY=1 to NOTIFY_SOCKET (sd_notify).
	NotifyReady bool
	// MaxQueuedRequests (maxQueuedRequests, default 1000, 0 = no limit):
	// requests that may wait at once for a starting or restarting app; past
	// it they get 503.2 with Retry-After.
	MaxQueuedRequests int
	// RetryIdempotentRequests (retryIdempotentRequests, default true): retry
	// once on a new process a safe request whose process died under it.
	RetryIdempotentRequests bool
	// DrainTimeout (drainTimeout, hh:mm:ss or seconds, default = ShutdownTimeLimit):
	// how long a recycled process may finish in-flight requests and WebSockets.
	DrainTimeout time.Duration
	// RestartMarker (restartMarker, default "" = none): a file whose change
	// (e.g. touch) recycles the app; absolute path (spelled and resolved as
	// StdoutLogFile).
	RestartMarker string
	// StdoutLogMaxSize (stdoutLogMaxSize, bytes or with a 1024-based suffix
	// such as 512KB or 10MB, default 0 = unlimited): a log file is closed and
	// a new one started past this size, at a line end.
	StdoutLogMaxSize int64
	// StdoutLogMaxFiles (stdoutLogMaxFiles, default 0 = keep all): log files
	// kept per app; the oldest are deleted.
	StdoutLogMaxFiles int
	// SocketActivation (socketActivation, default false): Gatehouse binds the
	// app's socket and passes it as LISTEN_FDS=1 / LISTEN_PID.
	SocketActivation bool
	// StartAtBoot (startAtBoot, default false): start the app when Gatehouse
	// starts instead of on the first request.
	StartAtBoot bool
	// ShutdownEvent (shutdownEvent: true, false or auto; default auto =
	// nil): whether a stopping process first gets ANCM's shutdown event
	// (POST <path>/iisintegration), which only ASP.NET Core apps
	// understand; every process gets SIGTERM. Auto sends it to ASP.NET Core
	// apps alone: processPath dotnet, an app .dll in the arguments, an
	// apphost beside its .runtimeconfig.json, or ASPNETCORE_ variables in
	// environmentVariables.
	ShutdownEvent *bool `json:",omitempty"`
	// Protocol (protocol, "http1" or "h2c", default "http1", or the site
	// config's application entry when web.config does not set it): how
	// Gatehouse talks to the app. "h2c" is HTTP/2 with prior knowledge on
	// the app's loopback port (what gRPC services need); the app is then
	// given Kestrel__EndpointDefaults__Protocols=Http2 unless its
	// environmentVariables set that name.
	Protocol string `json:",omitempty"`
	// GRPCWeb (grpcWeb, default false): translate gRPC-Web requests
	// (application/grpc-web and application/grpc-web-text) from browsers
	// into gRPC to the app and its answers back, trailers in the body, as
	// Envoy's grpc_web filter does. It needs Protocol "h2c".
	GRPCWeb bool `json:",omitempty"`

	// Rewrite is the <rewrite> section (URL Rewrite inbound rules and
	// maps); nil when the file has none. See package rewrite.
	Rewrite *Rewrite
	// HTTPRedirects are the <httpRedirect> sections: the app's own (Path "")
	// and those of <location path> elements, in file order; nil when the
	// file has none.
	HTTPRedirects []HTTPRedirect
	// Sources are the files read besides web.config (configSource
	// attributes), as absolute paths: a change to one is a change of
	// web.config.
	Sources []string
	// Sections lists the <system.webServer> sections besides <aspNetCore>
	// that the app's front door carries out, as "name (summary)", in file
	// order; "gatehouse check" prints them.
	Sections []string
	// WebSocketDisabled is <webSocket enabled="false"/> in
	// <system.webServer> (default false: WebSockets work). When set, an
	// Upgrade request reaches the app as a plain request without its Upgrade
	// header, so it cannot switch protocols, and the app is told
	// ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=false, as IIS does without its
	// WebSocket module.
	WebSocketDisabled bool `json:",omitempty"`
	// Unsupported lists elements of the file that Gatehouse reads but does
	// not carry out, each "file:line: <element>: why"; "gatehouse check"
	// prints them and loading logs them. Nothing is silently ignored.
	Unsupported []string
	// Security holds <system.webServer><security> of the file's own level
	// and of each <location path="…"> in the file, in file order. Empty
	// when the file has none: the site's defaults apply.
	Security []Security `json:",omitempty"`
	// SiteSchemes are the authentication schemes the site turns on by
	// default (site config); the zero value is no scheme at all, so whoever
	// fills an App sets it (config.Default sets DefaultSchemes, IIS's).
	// ASPNETCORE_IIS_HTTPAUTH is RootSchemes(SiteSchemes).
	SiteSchemes Schemes `json:"-"`

	// Set records which settings the source gave explicitly, keyed by the
	// web.config name as spelled in the field comments above (attribute
	// "startupTimeLimit", handlerSetting "drainTimeout", …). Unset names keep
	// their defaults. Whoever fills an App (package webconfig, the command
	// line) marks what it sets; WriteSettings reports it as the source, and
	// Validate uses Set["drainTimeout"] to decide whether DrainTimeout
	// follows ShutdownTimeLimit. A nil map means nothing was set.
	Set map[string]bool
}

// EnvVar is one <environmentVariable>.
type EnvVar struct {
	Name  string
	Value string
}

// The protocols Gatehouse speaks to an app (App.Protocol).
const (
	// ProtocolHTTP1 is HTTP/1.1, as ANCM: the default.
	ProtocolHTTP1 = "http1"
	// ProtocolH2C is HTTP/2 over cleartext TCP with prior knowledge
	// (RFC 9113 §3.3).
	ProtocolH2C = "h2c"
)

// ValidProtocol reports whether p names a protocol to the app (exact,
// lower case, as web.config and the site config spell it).
func ValidProtocol(p string) bool { return p == ProtocolHTTP1 || p == ProtocolH2C }

// ProtocolName returns the protocol to the app: Protocol, or "http1" when
// it is empty.
func (a *App) ProtocolName() string {
	if a.Protocol == "" {
		return ProtocolHTTP1
	}
	return a.Protocol
}

// H2C reports whether the app is spoken to over HTTP/2 with prior knowledge.
func (a *App) H2C() bool { return a.Protocol == ProtocolH2C }
