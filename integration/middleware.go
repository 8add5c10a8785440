package integration

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// shutdownPath is the path, relative to the path base, of the module's
// shutdown request (compared case-insensitively, as ASP.NET's PathString).
const shutdownPath = "/iisintegration"

var discardLogger = slog.New(slog.DiscardHandler)

// Middleware is the Go counterpart of ASP.NET Core's IIS integration
// pipeline (UsePathBase, UseForwardedHeaders, IISMiddleware). For each request
// it, in this order:
//
//  1. Rejects the request with 400 and no body, and logs an error, when
//     Config.Token is non-empty and the MS-ASPNETCORE-TOKEN header does not
//     equal it (compared in constant time; a missing header never matches).
//     The log line never contains the expected or the received token.
//  2. Strips Config.PathBase from the front of the path when the path starts
//     with it segment-wise, ignoring case: with PathBase "/app", "/APP/x"
//     becomes "/x" and "/app" becomes "/"; "/apple" is left alone. The base
//     (as configured) is then returned by [PathBase]. r.URL.RawPath is
//     stripped the same way.
//  3. Applies X-Forwarded-For and X-Forwarded-Proto like ASP.NET Core's
//     ForwardedHeadersMiddleware with ForwardLimit=1, KnownNetworks
//     127.0.0.0/8 and KnownProxies ::1 (unless IgnoreForwardedHeaders): only
//     when the immediate peer is a loopback address, the right-most
//     X-Forwarded-For entry ("ip:port", "[v6]:port" or a bare ip, which gets
//     port 0) becomes r.RemoteAddr and the right-most X-Forwarded-Proto
//     becomes r.URL.Scheme (read it with [Scheme]; r.TLS is never faked).
//     The previous values go to X-Original-For and X-Original-Proto and the
//     applied entries are removed from the X-Forwarded-* headers.
//  4. Removes MS-ASPNETCORE-CLIENTCERT and, when Config.Token is non-empty,
//     decodes it (base64 of the DER certificate) for [ClientCertificate]. A
//     value that does not decode is logged as a warning and gives nil.
//  5. Removes MS-ASPNETCORE-USER, -AUTHTYPE, -GROUPS and -GROUPSIDS and, when
//     Config.Token is non-empty, decodes them for [UserFrom]: the user
//     Gatehouse authenticated (Negotiate or Basic). Without a token they
//     are dropped unread, since nothing would prove they came from the
//     module.
//  6. When Config.Token is non-empty, answers the module's shutdown request
//     (POST <PathBase>/iisintegration with MS-ASPNETCORE-EVENT: shutdown,
//     the path and event compared case-insensitively) with 202 and no body,
//     and reports it through ShutdownRequested and OnShutdown. Any other
//     method, path or event passes through to Next. Without a token the
//     shutdown request is not recognised at all, since nothing would prove
//     it came from the module.
//  7. Removes MS-ASPNETCORE-TOKEN, so Next cannot leak it, and calls Next
//     with a copy of the request; the original request is not modified.
//
// With the zero Config only step 3 applies, besides the removal of the
// MS-ASPNETCORE-CLIENTCERT and MS-ASPNETCORE-TOKEN headers. Fields must be set before the first
// request and not changed afterwards. A Middleware must not be copied after
// first use. It is safe for concurrent use.
type Middleware struct {
	// Next handles every request that is not rejected or answered here.
	// It must not be nil.
	Next http.Handler

	// Config is the module contract. See [FromEnv] and [Handler].
	Config Config

	// Logger receives the rejected-token errors and certificate warnings.
	// Nil means these are discarded.
	Logger *slog.Logger

	// OnShutdown, if non-nil, is called once, for the first shutdown
	// request, on that request's goroutine after the 202 has been written
	// and flushed. It must not block until the server stops:
	// http.Server.Shutdown waits for this very request to end. Signal a
	// channel or cancel a context instead, or use ShutdownRequested.
	OnShutdown func()

	// IgnoreForwardedHeaders turns off step 3, for apps that sit behind a
	// proxy on the same host that they do not trust with client addresses.
	IgnoreForwardedHeaders bool

	initOnce     sync.Once
	shutdownOnce sync.Once
	shutdown     chan struct{} // closed by the first shutdown request
}

// Handler returns a Middleware that wraps h with the Config from
// [FromEnv] when that Config is [Config.Enabled], and with the zero Config
// otherwise (so outside the module only forwarded headers are applied), as
// ASP.NET Core's UseIISIntegration does. Set Logger and OnShutdown on the
// result before serving, if needed.
func Handler(h http.Handler) *Middleware {
	cfg := FromEnv()
	if !cfg.Enabled() {
		cfg = Config{}
	}
	return &Middleware{Next: h, Config: cfg}
}

// ShutdownRequested returns a channel that is closed when the module's
// shutdown request has been answered. It returns the same channel on every
// call, and may be called before or after the request arrives.
func (m *Middleware) ShutdownRequested() <-chan struct{} {
	m.initOnce.Do(m.init)
	return m.shutdown
}

func (m *Middleware) init() { m.shutdown = make(chan struct{}) }

// requestInfo is the per-request state read by PathBase and
// ClientCertificate.
type requestInfo struct {
	pathBase string
	cert     *x509.Certificate
	user     *User
}

type infoKey struct{}

// ServeHTTP implements [http.Handler]; see [Middleware] for what it does.
func (m *Middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.Config.Token != "" && !tokenMatches(r.Header.Get(HeaderToken), m.Config.Token) {
		m.logger().LogAttrs(r.Context(), slog.LevelError,
			"'MS-ASPNETCORE-TOKEN' does not match the expected pairing token, request rejected",
			slog.String("remote", r.RemoteAddr),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Bool("token_present", len(r.Header.Values(HeaderToken)) > 0))
		w.WriteHeader(http.StatusBadRequest)
		return
	}

	info := &requestInfo{}
	r = r.Clone(context.WithValue(r.Context(), infoKey{}, info))
	r.Header.Del(HeaderToken)

	if base := cleanBase(m.Config.PathBase); base != "" {
		if rest, ok := stripBase(r.URL.Path, base); ok {
			info.pathBase = base
			if r.URL.RawPath != "" {
				r.URL.RawPath = stripSegments(r.URL.RawPath, strings.Count(base, "/"))
			}
			r.URL.Path = rest
		}
	}

	if !m.IgnoreForwardedHeaders {
		res := applyForwarded(r.Header, r.RemoteAddr, tlsScheme(r))
		if res.remoteAddr != "" {
			r.RemoteAddr = res.remoteAddr
		}
		if res.scheme != "" {
			r.URL.Scheme = res.scheme
		}
	}

	if vals := r.Header.Values(HeaderClientCert); len(vals) > 0 {
		r.Header.Del(HeaderClientCert)
		if vals[0] != "" && m.Config.Token != "" {
			info.cert = m.parseCert(r, vals[0])
		}
	}

	info.user = takeUser(r.Header, m.Config.Token != "")

	if m.Config.Token != "" && isShutdownRequest(r) {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		_ = http.NewResponseController(w).Flush() // best effort: the 202 goes out before OnShutdown runs
		m.requestShutdown()
		return
	}

	m.Next.ServeHTTP(w, r)
}

func (m *Middleware) requestShutdown() {
	m.initOnce.Do(m.init)
	m.shutdownOnce.Do(func() {
		close(m.shutdown)
		if m.OnShutdown != nil {
			m.OnShutdown()
		}
	})
}

func (m *Middleware) logger() *slog.Logger {
	if m.Logger == nil {
		return discardLogger
	}
	return m.Logger
}

func (m *Middleware) parseCert(r *http.Request, v string) *x509.Certificate {
	der, err := base64.StdEncoding.DecodeString(v)
	if err == nil {
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(der); err == nil {
			return cert
		}
	}
	m.logger().LogAttrs(r.Context(), slog.LevelWarn, "decode forwarded client certificate",
		slog.String("header", HeaderClientCert), slog.Any("error", err))
	return nil
}

func tokenMatches(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func isShutdownRequest(r *http.Request) bool {
	return r.Method == http.MethodPost &&
		strings.EqualFold(r.URL.Path, shutdownPath) &&
		strings.EqualFold(r.Header.Get(HeaderEvent), "shutdown")
}

// cleanBase returns base with a leading and no trailing slash, or "" for the
// site root ("" or "/").
func cleanBase(base string) string {
	base = strings.TrimRight(base, "/")
	if base == "" {
		return ""
	}
	if base[0] != '/' {
		base = "/" + base
	}
	return base
}

// stripBase removes base from the front of path when path starts with it
// segment-wise, ignoring case. An empty remainder becomes "/".
func stripBase(path, base string) (string, bool) {
	if len(path) < len(base) || !strings.EqualFold(path[:len(base)], base) {
		return path, false
	}
	rest := path[len(base):]
	if rest == "" {
		return "/", true
	}
	if rest[0] != '/' {
		return path, false
	}
	return rest, true
}

// stripSegments removes the first n "/segment" parts of an escaped path.
// If the result does not unescape to the stripped Path, url.URL.EscapedPath
// ignores it and escapes Path itself, so a mismatch is harmless.
func stripSegments(raw string, n int) string {
	pos := 0
	for range n {
		j := strings.IndexByte(raw[min(pos+1, len(raw)):], '/')
		if j < 0 {
			return "/"
		}
		pos += 1 + j
	}
	if _, err := url.PathUnescape(raw[pos:]); err != nil {
		return ""
	}
	return raw[pos:]
}

func tlsScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// Scheme returns the scheme the client used: r.URL.Scheme when set (by
// X-Forwarded-Proto through [Middleware]), otherwise "https" if the request
// came over TLS and "http" if not.
func Scheme(r *http.Request) string {
	if r.URL.Scheme != "" {
		return r.URL.Scheme
	}
	return tlsScheme(r)
}

// PathBase returns the path base [Middleware] stripped from r's path, such
// as "/myapp", or "" if none was stripped or r did not pass through a
// Middleware.
func PathBase(r *http.Request) string {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info.pathBase
	}
	return ""
}

// ClientCertificate returns the client certificate the module forwarded in
// MS-ASPNETCORE-CLIENTCERT, or nil if there was none, it did not decode, no
// token is configured, or r did not pass through a [Middleware].
func ClientCertificate(r *http.Request) *x509.Certificate {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info.cert
	}
	return nil
}
