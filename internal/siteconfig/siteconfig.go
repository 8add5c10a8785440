// Package siteconfig reads the Gatehouse front-door configuration: the sites,
// their bindings (scheme, address, port, host name, certificates) and the
// applications mounted under virtual paths, plus the request limits, timeouts
// and protocol switches that HTTP.sys and IIS request filtering provide on
// Windows.
//
// The file is YAML and strict: an unknown key, a duplicate binding or an app
// folder without web.config is an error that names file:line. Relative paths
// resolve against the folder of the config file. See doc.md for the user
// manual; field comments below are its source.
package siteconfig

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults. Where IIS or HTTP.sys has a default, Gatehouse uses the same number.
const (
	// DefaultMaxRequestBytes is HTTP.sys MaxRequestBytes: request line plus
	// headers.
	DefaultMaxRequestBytes = 16384
	// DefaultMaxURL is IIS requestFiltering/requestLimits@maxUrl.
	DefaultMaxURL = 4096
	// DefaultMaxQueryString is IIS requestFiltering/requestLimits@maxQueryString.
	DefaultMaxQueryString = 2048
	// DefaultMaxAllowedContentLength is IIS
	// requestFiltering/requestLimits@maxAllowedContentLength (about 28.6 MiB).
	DefaultMaxAllowedContentLength = 30000000
	// DefaultHeaderTimeout is HTTP.sys TimerHeaderWait.
	DefaultHeaderTimeout = 120 * time.Second
	// DefaultBodyTimeout is HTTP.sys TimerEntityBody.
	DefaultBodyTimeout = 120 * time.Second
	// DefaultIdleTimeout is HTTP.sys TimerIdleConnection (IIS
	// limits@connectionTimeout).
	DefaultIdleTimeout = 120 * time.Second
	// DefaultWebSocketTimeout is the idle timeout of upgraded (WebSocket)
	// connections: longer than ASP.NET Core's default WebSocket keep-alive
	// ping (2 minutes), so a quiet but healthy socket stays; nginx
	// (proxy_read_timeout) and AWS ALB use 60 s, Azure's load balancer 4
	// minutes, HAProxy's timeout tunnel has no default.
	DefaultWebSocketTimeout = 5 * time.Minute
	// DefaultSendTimeout is the send timeout: as long as the other slow-client
	// timeouts (nginx send_timeout is 60 s).
	DefaultSendTimeout = 120 * time.Second
	// DefaultDeferAccept is how long the kernel holds a new TCP connection
	// that has sent nothing (TCP_DEFER_ACCEPT): nginx's "deferred" uses
	// one second too.
	DefaultDeferAccept = time.Second
	// DefaultShutdownTimeout is the drain budget on stop and for listeners a
	// reload retires.
	DefaultShutdownTimeout = 30 * time.Second
)

// Config is one parsed and validated front-door configuration. Parse, Load and
// Single return it with defaults applied; callers treat it as read-only.
type Config struct {
	// File is the absolute path of the file the config came from ("" for Single).
	File string `yaml:"-" json:"file,omitempty"`

	// ShutdownTimeout (shutdownTimeout, default 30s): how long a stop waits for
	// in-flight requests before closing connections; also the drain budget for
	// listeners dropped by a reload. Negative means do not wait.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout" json:"shutdownTimeout"`

	Limits    Limits    `yaml:"limits" json:"limits"`
	Timeouts  Timeouts  `yaml:"timeouts" json:"timeouts"`
	TLS       TLS       `yaml:"tls" json:"tls"`
	Protocols Protocols `yaml:"protocols" json:"protocols"`
	// ACME (acme) configures automatic HTTPS for the bindings with
	// certificate: auto.
	ACME ACME `yaml:"acme" json:"acme,omitzero"`

	// TrustedProxies (trustedProxies, IP addresses or CIDR prefixes, default
	// none) are the proxies in front of Gatehouse whose X-Forwarded-For is
	// believed: the client address that IP restrictions and logs use is the
	// last address in X-Forwarded-For that is not a trusted proxy, when the
	// connection comes from one. Otherwise it is the connection's peer.
	TrustedProxies []string `yaml:"trustedProxies" json:"trustedProxies,omitempty"`
	// Compression (compression) holds the dynamic-compression settings that
	// IIS keeps in applicationHost.config's <httpCompression>.
	Compression Compression `yaml:"compression" json:"compression"`
	// RequestFiltering (requestFiltering) holds the server-level request
	// filtering that IIS keeps in applicationHost.config.
	RequestFiltering RequestFiltering `yaml:"requestFiltering" json:"requestFiltering,omitzero"`
	// ProxyUpstreams (proxyUpstreams, "host:port" each, default none) are
	// the other servers that URL Rewrite rules may send requests to, as
	// IIS's Application Request Routing does (a Rewrite action whose url is
	// "http://127.0.0.1:3000/{R:1}"). Gatehouse forwards them over http
	// with X-Forwarded-For, X-Forwarded-Proto and X-Original-URL. A rule
	// that rewrites to a server not listed is refused when the app is
	// loaded, so a web.config cannot make Gatehouse reach other hosts.
	ProxyUpstreams []string `yaml:"proxyUpstreams" json:"proxyUpstreams,omitempty"`
	// GlobalRules (globalRules, a file, default none) holds URL Rewrite
	// global rules in the shape of IIS's applicationHost.config:
	// <configuration><system.webServer><rewrite> with <globalRules> and
	// <rewriteMaps>. They run for every application before its own rules,
	// on the whole path. The file is read when an app is opened, and again
	// on reload when it changed.
	GlobalRules string `yaml:"globalRules" json:"globalRules,omitempty"`

	// Sites (sites, at least one) are served in the order written; the order
	// only matters for the names of bindings without a name.
	Sites []Site `yaml:"sites" json:"sites"`
}

// Limits are the request limits of IIS request filtering and HTTP.sys. For
// every field, 0 (or leaving it out) means the default; -1 means no limit.
type Limits struct {
	// MaxRequestBytes (maxRequestBytes, bytes, default 16384 = HTTP.sys
	// MaxRequestBytes): request line plus all headers. Over it: 431.
	MaxRequestBytes int `yaml:"maxRequestBytes" json:"maxRequestBytes"`
	// MaxURL (maxUrl, bytes, default 4096): length of the path as sent,
	// without the query string. Over it: 404.14.
	MaxURL int `yaml:"maxUrl" json:"maxUrl"`
	// MaxQueryString (maxQueryString, bytes, default 2048): length of the raw
	// query string. Over it: 404.15.
	MaxQueryString int `yaml:"maxQueryString" json:"maxQueryString"`
	// MaxAllowedContentLength (maxAllowedContentLength, bytes, default
	// 30000000): largest request body. A larger Content-Length gets 413 before
	// the app sees the request; a chunked body is cut at the limit and the
	// connection closed. The bytes of an upgraded connection (a WebSocket,
	// also over HTTP/2 or HTTP/3) are no request body and not counted.
	MaxAllowedContentLength int64 `yaml:"maxAllowedContentLength" json:"maxAllowedContentLength"`
	// MaxConnections (maxConnections, default 0 = automatic, -1 =
	// unlimited): open client connections, TCP and QUIC, over all
	// listeners. At the limit, a connection of the same listener waiting
	// for a request (idle keep-alive first) is closed to make room; if
	// there is none, requests on a TCP connection beyond it get 503 and
	// the connection is closed, and a QUIC connection is refused at the
	// handshake. It also bounds the HTTP/2 and HTTP/3 requests in flight
	// over all connections: a new stream beyond it gets 503.2. The
	// automatic limit is a quarter of the machine's memory at 256 KiB per
	// connection, at most half the open-file limit, within 256–50000 (4096
	// on a 4 GiB machine); see docs/site-config.md.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections"`
	// MaxConnectionsPerClient (maxConnectionsPerClient, default 0 =
	// automatic, -1 = unlimited): open client connections, TCP and QUIC,
	// from one client address (an IPv6 client counts by its /64), like
	// nginx's limit_conn. A connection beyond it is closed at once (QUIC:
	// refused at the handshake). Trusted proxies (trustedProxies) are not
	// limited. The automatic limit is a quarter of maxConnections, at
	// least 64, and none when maxConnections is -1.
	MaxConnectionsPerClient int `yaml:"maxConnectionsPerClient" json:"maxConnectionsPerClient"`
}

// Timeouts guard against slow clients. 0 (or leaving it out) means the
// default; a negative value means no timeout.
type Timeouts struct {
	// Header (header, default 120s = HTTP.sys HeaderWait): time to receive the
	// request line and headers. The connection is closed when it runs out.
	Header time.Duration `yaml:"header" json:"header"`
	// Body (body, default 120s = HTTP.sys EntityBody): longest wait for the
	// next piece of the request body (an inactivity timeout, renewed on every
	// read). The app's read fails and the connection is closed. An upgraded
	// connection (a WebSocket, also over HTTP/2 or HTTP/3) has WebSocket
	// instead.
	Body time.Duration `yaml:"body" json:"body"`
	// Idle (idle, default 120s = HTTP.sys IdleConnection): how long a
	// keep-alive connection may wait for its next request.
	Idle time.Duration `yaml:"idle" json:"idle"`
	// WebSocket (webSocket, default 5m = DefaultWebSocketTimeout): how long
	// an upgraded (WebSocket) connection may pass no byte in either
	// direction before it is closed (the app's side with it); for a
	// WebSocket over HTTP/2 or HTTP/3 (extended CONNECT), its stream.
	WebSocket time.Duration `yaml:"webSocket" json:"webSocket"`
	// Send (send, default 120s = DefaultSendTimeout): longest wait for the
	// client to take the next piece of a response (an inactivity timeout,
	// renewed whenever a write makes progress; not a bound on the whole
	// response). When it passes, the client connection is closed and the
	// request ends as when the client goes away (HTTP/3: the stream's write
	// fails and the request ends the same way).
	Send time.Duration `yaml:"send" json:"send"`
	// DeferAccept (deferAccept, default 1s = DefaultDeferAccept; negative:
	// off): a new TCP connection is handed to Gatehouse only once its
	// first bytes (a request, a TLS ClientHello) have come, or, for one
	// that stays silent, after about this long (TCP_DEFER_ACCEPT, nginx's
	// "deferred"; the kernel counts it in SYN-ACK retransmissions, 1 s
	// apart and then doubling). Until then the connection costs Gatehouse
	// nothing and counts against no limit, as with HTTP.sys, which hands
	// over requests, not connections; the header timeout starts when it
	// is handed over.
	DeferAccept time.Duration `yaml:"deferAccept" json:"deferAccept"`
}

// TLS holds settings shared by all https bindings.
type TLS struct {
	// MinVersion (minVersion, "1.2" or "1.3", default "1.2"). With 1.2 the
	// cipher suites are the ECDHE AES-GCM and ChaCha20-Poly1305 ones only.
	MinVersion string `yaml:"minVersion" json:"minVersion"`
}

// Protocols switches the HTTP versions on and off.
type Protocols struct {
	// DisableHTTP2 (disableHttp2, default false): HTTP/2 over TLS, negotiated
	// with ALPN, is on unless this is set.
	DisableHTTP2 bool `yaml:"disableHttp2" json:"disableHttp2"`
	// H2C (h2c, default false): accept cleartext HTTP/2 with prior knowledge
	// on http bindings.
	H2C bool `yaml:"h2c" json:"h2c"`
	// HTTP3 (http3, default false): serve HTTP/3 over QUIC on the UDP port of
	// every https listener and announce it with Alt-Svc.
	HTTP3 bool `yaml:"http3" json:"http3"`
}

// Site is one IIS site: bindings, applications and its access log.
type Site struct {
	// Name (name, required, unique) appears in logs and in AppSpec.Site.
	Name string `yaml:"name" json:"name"`
	// Bindings (bindings, at least one) are the addresses the site answers on.
	Bindings []Binding `yaml:"bindings" json:"bindings"`
	// Applications (applications) are mounted under virtual paths; a request
	// goes to the one with the longest matching path. A site without a "/"
	// application answers 404 outside its virtual paths.
	Applications []Application `yaml:"applications" json:"applications"`
	// RedirectToHTTPS (redirectToHttps, default false): requests on the
	// site's http bindings are redirected to its https binding (301 for GET
	// and HEAD, 308 otherwise). Needs an https binding.
	RedirectToHTTPS bool `yaml:"redirectToHttps" json:"redirectToHttps"`
	// AccessLog (accessLog) is the site's request log; off when Path is "".
	AccessLog AccessLog `yaml:"accessLog" json:"accessLog"`
	// Authentication (authentication) is the site's authentication
	// defaults, keytab and user files.
	Authentication Authentication `yaml:"authentication" json:"authentication,omitzero"`

	// Line is the line of the site in the file (0 for Single).
	Line int `yaml:"-" json:"line,omitempty"`
}

// Binding is one IIS binding: where a site listens and for which host name.
type Binding struct {
	// Name (name, default "<site>/<index>") identifies the binding in
	// Server.Addrs and logs. Unique in the file.
	Name string `yaml:"name" json:"name"`
	// Scheme (scheme, "http" or "https", required).
	Scheme string `yaml:"scheme" json:"scheme"`
	// Address (address, default "" = all addresses; "*" is accepted as in
	// IIS) is the IP address to listen on.
	Address string `yaml:"address" json:"address"`
	// Port (port, required unless 0 is meant). Port 0 picks a free port; all
	// bindings with the same scheme and address and port 0 share it.
	Port int `yaml:"port" json:"port"`
	// Host (host, default "" = any host) is the host name this binding
	// answers: exact ("www.example.com") or wildcard ("*.example.com", which
	// matches "a.example.com" but not "example.com"). Compared without case
	// and without the port. The empty host is the default for its listener.
	Host string `yaml:"host" json:"host"`

	// Certificate (certificate, "auto" or left out; https only): "auto"
	// has Gatehouse obtain the certificate for Host from the ACME server
	// of the acme section, and renew it, instead of reading files.
	Certificate string `yaml:"certificate" json:"certificate,omitempty"`
	// CertificateFile and KeyFile (certificateFile, keyFile; https only,
	// required there unless certificate is auto): PEM files. The
	// certificate file may hold the chain. Re-read on reload and when the
	// files change.
	CertificateFile string `yaml:"certificateFile" json:"certificateFile,omitempty"`
	KeyFile         string `yaml:"keyFile" json:"keyFile,omitempty"`
	// ClientCertificate (clientCertificate, "none", "optional" or "required",
	// default "none"; https only) asks TLS clients for a certificate, as IIS
	// sslFlags Ssl/SslNegotiateCert/SslRequireCert.
	ClientCertificate string `yaml:"clientCertificate" json:"clientCertificate,omitempty"`
	// ClientCAFile (clientCaFile, optional): PEM CA bundle client
	// certificates must chain to. Without it, any certificate is accepted and
	// verifying it is the app's job.
	ClientCAFile string `yaml:"clientCaFile" json:"clientCaFile,omitempty"`

	// Line is the line of the binding in the file (0 for Single).
	Line int `yaml:"-" json:"line,omitempty"`
}

// Application is an app mounted at a virtual path of a site.
type Application struct {
	// Path (path, required): "/" or a virtual path such as "/api" (no
	// trailing slash). Matched segment-wise and without case, as IIS does.
	// The app gets it as ASPNETCORE_APPL_PATH and sees the full request path.
	Path string `yaml:"path" json:"path"`
	// Dir (dir, required): the folder holding the app's web.config.
	Dir string `yaml:"dir" json:"dir"`
	// Pool holds the application-pool settings (user, recycling, limits),
	// written directly in the application entry.
	Pool `yaml:",inline"`

	// StripPathBase (stripPathBase, default false) is for apps that are not
	// ASP.NET and do not know their virtual path: the path is forwarded
	// without Path ("/api/x" as "/x") and X-Forwarded-Prefix carries Path.
	// By default the app sees the full path, as under ANCM.
	StripPathBase bool `yaml:"stripPathBase" json:"stripPathBase,omitempty"`
	// Protocol (protocol, "http1" or "h2c", default "" = the app's
	// web.config, else http1) is how Gatehouse talks to the app: "h2c" is
	// HTTP/2 with prior knowledge, for gRPC services. A protocol
	// handlerSetting in web.config wins over it.
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`

	// Line is the line of the application in the file (0 for Single).
	Line int `yaml:"-" json:"line,omitempty"`
	// NoWebConfig is set by "gatehouse run", whose app is a command line:
	// Dir is then only its working directory and needs no web.config.
	NoWebConfig bool `yaml:"-" json:"-"`
}

// AccessLog configures a site's access log.
type AccessLog struct {
	// Path (path, default "" = no log) of the file; appended to.
	Path string `yaml:"path" json:"path,omitempty"`
	// Format (format, "w3c" or "json", default "w3c"): W3C extended log
	// format, or one JSON object per line.
	Format string `yaml:"format" json:"format,omitempty"`
	// Fields (fields) chooses the W3C log's fields as IIS's
	// logExtFileFlags do: a comma-separated list of the flag names of
	// W3CFields ("Date, Time, ClientIP, BytesSent, TimeTaken"), written in
	// IIS's column order whatever the list's. Default DefaultW3CFlags,
	// IIS's default, which GoAccess's W3C format reads as is. Only for
	// format w3c.
	Fields string `yaml:"fields" json:"fields,omitempty"`
}

// W3CField is one column IIS can write in its W3C log: Flag is its name in
// logExtFileFlags, Name its name in the #Fields line.
type W3CField struct {
	Flag, Name string
}

// W3CFields are the columns of the W3C log in IIS's order.
var W3CFields = []W3CField{
	{"Date", "date"}, {"Time", "time"}, {"SiteName", "s-sitename"}, {"ComputerName", "s-computername"},
	{"ServerIP", "s-ip"}, {"Method", "cs-method"}, {"UriStem", "cs-uri-stem"}, {"UriQuery", "cs-uri-query"},
	{"ServerPort", "s-port"}, {"UserName", "cs-username"}, {"ClientIP", "c-ip"}, {"ProtocolVersion", "cs-version"},
	{"UserAgent", "cs(User-Agent)"}, {"Cookie", "cs(Cookie)"}, {"Referer", "cs(Referer)"}, {"Host", "cs-host"},
	{"HttpStatus", "sc-status"}, {"HttpSubStatus", "sc-substatus"}, {"Win32Status", "sc-win32-status"},
	{"BytesSent", "sc-bytes"}, {"BytesRecv", "cs-bytes"}, {"TimeTaken", "time-taken"},
}

// DefaultW3CFlags is IIS's default logExtFileFlags: the W3C log's
// fields when AccessLog.Fields is empty.
const DefaultW3CFlags = "Date, Time, ClientIP, UserName, ServerIP, Method, UriStem, UriQuery, HttpStatus, " +
	"Win32Status, TimeTaken, ServerPort, UserAgent, Referer, HttpSubStatus"

// SelectW3CFields returns the W3CFields that flags (logExtFileFlags, comma
// separated, any case; "" for DefaultW3CFlags) chooses, in IIS's column
// order. An unknown flag is an error naming the closest known one.
func SelectW3CFields(flags string) ([]W3CField, error) {
	if strings.TrimSpace(flags) == "" {
		flags = DefaultW3CFlags
	}
	want := map[string]bool{}
	for f := range strings.SplitSeq(flags, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := slices.IndexFunc(W3CFields, func(w W3CField) bool { return strings.EqualFold(w.Flag, f) })
		if i < 0 {
			names := make([]string, len(W3CFields))
			for j, w := range W3CFields {
				names[j] = w.Flag
			}
			return nil, fmt.Errorf("unknown field %q%s; the fields are %s", f, didYouMean(f, names), strings.Join(names, ", "))
		}
		want[W3CFields[i].Flag] = true
	}
	var out []W3CField
	for _, w := range W3CFields {
		if want[w.Flag] {
			out = append(out, w)
		}
	}
	return out, nil
}

// Client certificate modes of Binding.ClientCertificate.
const (
	ClientCertNone     = "none"
	ClientCertOptional = "optional"
	ClientCertRequired = "required"
)

// ListenerKey returns the key of the socket the binding listens on:
// "scheme://address:port". Bindings with equal keys share one socket.
func (b *Binding) ListenerKey() string {
	return b.Scheme + "://" + b.ListenAddr()
}

// ListenAddr returns the address to pass to net.Listen.
func (b *Binding) ListenAddr() string {
	return joinHostPort(b.Address, b.Port)
}

// HTTPSPort returns the port of the site's https bindings, or 0 when it has
// none or several different ones (ASPNETCORE_ANCM_HTTPS_PORT rule).
func (s *Site) HTTPSPort() int {
	port := 0
	for i := range s.Bindings {
		b := &s.Bindings[i]
		if b.Scheme != "https" {
			continue
		}
		if port != 0 && port != b.Port {
			return 0
		}
		port = b.Port
	}
	return port
}
