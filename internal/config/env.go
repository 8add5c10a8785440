package config

import (
	"strconv"
	"strings"
)

// Names of the variables Gatehouse sets for the app, with ANCM's names
// (docs/web-config.md, "What the app process gets").
const (
	EnvPort                   = "ASPNETCORE_PORT"
	EnvToken                  = "ASPNETCORE_TOKEN"
	EnvApplPath               = "ASPNETCORE_APPL_PATH"
	EnvHTTPAuth               = "ASPNETCORE_IIS_HTTPAUTH"
	EnvHostingStartup         = "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES"
	EnvWebSocketsSupported    = "ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED"
	EnvHTTPSPort              = "ASPNETCORE_ANCM_HTTPS_PORT"
	EnvPreferEnvironment      = "ANCM_PREFER_ENVIRONMENT_VARIABLES"
	EnvKestrelProtocols       = "Kestrel__EndpointDefaults__Protocols"
	IISIntegrationAssembly    = "Microsoft.AspNetCore.Server.IISIntegration"
	webSocketsSupportedAlways = "true"
)

// BuildEnv returns the app's environment as a new KEY=VALUE list, built as
// ANCM builds it (starting from the worker process's environment, with
// web.config's variables replacing inherited ones), except for the
// per-process port and token:
//
//  1. base (Gatehouse's own environment) is copied, minus any inherited
//     ASPNETCORE_PORT and ASPNETCORE_TOKEN, which belong to Gatehouse.
//  2. Each app.Env entry replaces the same-named inherited variable in
//     place (names compared without regard to case; later duplicates are
//     removed) or is appended. If base sets ANCM_PREFER_ENVIRONMENT_VARIABLES
//     to 1 or true, an inherited variable wins over app.Env instead. An
//     empty ASPNETCORE_PORT is dropped; a non-empty one, and
//     ASPNETCORE_TOKEN, are kept.
//  3. ASPNETCORE_APPL_PATH=applPath ("/" when empty),
//     ASPNETCORE_IIS_HTTPAUTH=app.RootSchemes(app.SiteSchemes).HTTPAuth()
//     ("anonymous;" by default; "windows;anonymous;", "none"…) and
//     ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=true are always set.
//     ASPNETCORE_HOSTINGSTARTUPASSEMBLIES, unless app.Env sets it, is the
//     inherited list with ";Microsoft.AspNetCore.Server.IISIntegration"
//     appended (unless already listed), or that name alone.
//     ASPNETCORE_ANCM_HTTPS_PORT=httpsPort is set when httpsPort > 0 and
//     app.Env does not set it.
//     Kestrel__EndpointDefaults__Protocols=Http2 is set for an h2c app
//     (app.H2C) unless app.Env sets that name: Kestrel serves cleartext
//     HTTP/2 only on an Http2-only endpoint.
//
// The caller adds ASPNETCORE_PORT, HTTP_PLATFORM_PORT, PORT and
// ASPNETCORE_TOKEN for each process unless the list already holds the
// web.config's ASPNETCORE_PORT or ASPNETCORE_TOKEN. base and app are not
// modified.
func BuildEnv(base []string, app *App, applPath string, httpsPort int) []string {
	e := envList{}
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(name, EnvPort) || strings.EqualFold(name, EnvToken) {
			continue
		}
		e = append(e, kv)
	}
	prefer := false
	if v, ok := e.get(EnvPreferEnvironment); ok {
		prefer = v == "1" || strings.EqualFold(v, "true")
	}
	fromConfig := map[string]bool{}
	for _, v := range app.Env {
		if strings.EqualFold(v.Name, EnvPort) && v.Value == "" {
			continue
		}
		fromConfig[strings.ToUpper(v.Name)] = true
		if _, ok := e.get(v.Name); ok && prefer {
			continue
		}
		e.set(v.Name, v.Value)
	}

	if applPath == "" {
		applPath = "/"
	}
	e.set(EnvApplPath, applPath)
	e.set(EnvHTTPAuth, app.RootSchemes(app.SiteSchemes).HTTPAuth())
	if !fromConfig[EnvHostingStartup] {
		v, _ := e.get(EnvHostingStartup)
		e.set(EnvHostingStartup, appendAssembly(v, IISIntegrationAssembly))
	}
	if app.WebSocketDisabled {
		e.set(EnvWebSocketsSupported, "false")
	} else {
		e.set(EnvWebSocketsSupported, webSocketsSupportedAlways)
	}
	if app.H2C() && !fromConfig[strings.ToUpper(EnvKestrelProtocols)] {
		e.set(EnvKestrelProtocols, "Http2")
	}
	if httpsPort > 0 && !fromConfig[EnvHTTPSPort] {
		e.set(EnvHTTPSPort, strconv.Itoa(httpsPort))
	}
	return e
}

// appendAssembly appends name to the ;-separated list unless it is listed.
func appendAssembly(list, name string) string {
	if list == "" {
		return name
	}
	for a := range strings.SplitSeq(list, ";") {
		if strings.EqualFold(strings.TrimSpace(a), name) {
			return list
		}
	}
	return list + ";" + name
}

// envList is a KEY=VALUE list with names matched without regard to case.
type envList []string

func (e envList) index(name string) int {
	for i, kv := range e {
		if k, _, _ := strings.Cut(kv, "="); strings.EqualFold(k, name) {
			return i
		}
	}
	return -1
}

func (e envList) get(name string) (string, bool) {
	if i := e.index(name); i >= 0 {
		_, v, _ := strings.Cut(e[i], "=")
		return v, true
	}
	return "", false
}

// set replaces the first variable called name in place, removes later ones,
// or appends it.
func (e *envList) set(name, value string) {
	kv := name + "=" + value
	i := e.index(name)
	if i < 0 {
		*e = append(*e, kv)
		return
	}
	(*e)[i] = kv
	rest := (*e)[:i+1]
	for _, x := range (*e)[i+1:] {
		if k, _, _ := strings.Cut(x, "="); !strings.EqualFold(k, name) {
			rest = append(rest, x)
		}
	}
	*e = rest
}
