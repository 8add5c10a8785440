// Package integration is the Go counterpart of ASP.NET Core's IIS integration
// (UseIISIntegration and IISMiddleware) for backend apps written in Go that run
// behind Gatehouse or behind IIS with the ASP.NET Core Module (ANCM) in the
// out-of-process hosting model.
//
// The module starts the app with a loopback port, a pairing token and the
// application's virtual path in the environment, and forwards every request to
// http://127.0.0.1:<port> with the token in MS-ASPNETCORE-TOKEN and the client
// address and scheme in X-Forwarded-For and X-Forwarded-Proto. This package
// gives the app the three pieces it needs to take part in that contract:
//
//   - [Listen] opens the listener the module expects (or a socket handed over
//     by systemd-style socket activation).
//   - [Middleware] (built by [Handler]) checks the pairing token, answers the
//     module's shutdown event, applies the forwarded headers, strips the path
//     base and decodes the forwarded client certificate.
//   - [Serve] combines both with a [net/http.Server] and stops gracefully when
//     the context ends or the module asks the app to shut down.
//
// # Environment
//
// The package reads these variables, and no others:
//
//	ASPNETCORE_PORT       port to listen on at 127.0.0.1 (set by the module)
//	HTTP_PLATFORM_PORT    fallback for ASPNETCORE_PORT (IIS HttpPlatformHandler)
//	PORT                  second fallback for ASPNETCORE_PORT (common PaaS convention)
//	ASPNETCORE_TOKEN      pairing token every request must carry in MS-ASPNETCORE-TOKEN
//	ASPNETCORE_APPL_PATH  application virtual path, e.g. "/myapp" ("/" for a site root)
//	LISTEN_FDS            number of sockets passed by socket activation, starting at fd 3
//	LISTEN_PID            process id the sockets are meant for; must equal os.Getpid()
//
// As with ASP.NET Core, the integration is only active (see [Config.Enabled])
// when ASPNETCORE_PORT, ASPNETCORE_APPL_PATH and ASPNETCORE_TOKEN are all set;
// otherwise [Handler] only applies forwarded headers from loopback peers.
//
// The package uses only the standard library and never exits the process:
// the shutdown event is reported through [Middleware.ShutdownRequested] and
// [Middleware.OnShutdown], and the app decides what to do.
package integration
