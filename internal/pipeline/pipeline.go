// Package pipeline is the front door's request pipeline: the IIS modules
// that run beside ANCM (IP restrictions, request filtering, URL Rewrite,
// authentication, custom headers, compression), each written once and run
// by both ways into Gatehouse — the net/http server (HTTP/2, HTTP/3, and
// what the lean HTTP/1.1 path hands over) and the lean HTTP/1.1 loop.
//
// A Chain is built once per application when its configuration is loaded
// and is immutable afterwards; a reload builds a new one and swaps it in
// atomically, as the routes are. The stages see a Request, a small view of
// the request that both paths fill without building an *http.Request, and
// end a request by returning a Result, which the one refusal funnel
// (WriteResult) answers. When a request is finished the front door hands a
// Done record to the Observers (the access log, metrics).
//
// The order of the stages is IIS's: IP and domain restrictions → request
// filtering → URL Rewrite and HTTP redirection → authentication and
// authorization → (forwarder) → custom headers and compression on the way
// out. A Chain with no stages costs one length check per request.
package pipeline

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Request is one request as the stages see it. The front door fills it
// before the chain runs; stages may change the fields documented as such.
// It is valid only until the request is finished: stages must not keep it.
type Request struct {
	// Method is the request method, e.g. "GET".
	Method string
	// Path is the request path in its escaped form ("/a%20b"), with dot
	// segments removed. It is what routing uses and what is forwarded.
	// URL Rewrite may change it (use Rewrite).
	Path string
	// RawQuery is the query string without '?', as the client sent it.
	RawQuery string
	// Host is the Host header (or :authority).
	Host string
	// Scheme is "http" or "https": how the client reached Gatehouse.
	Scheme string
	// Proto is the protocol version, "HTTP/1.1", "HTTP/2.0", "HTTP/3.0".
	Proto string
	// RemoteAddr is the TCP (or QUIC) peer, "ip:port" ("[::1]:5017").
	RemoteAddr string
	// ClientIP is the client's address: the peer's, or, when the peer is a
	// trusted proxy, the one its X-Forwarded-For names. IP restrictions
	// and logs use it.
	ClientIP netip.Addr
	// LocalAddr is the address the request arrived on, "ip:port".
	LocalAddr string
	// Header is the client's request header. Stages may change it.
	Header Header
	// ContentLength is the body length, -1 if unknown (chunked, HTTP/2
	// without content-length), 0 if there is no body.
	ContentLength int64
	// Trailer holds the request's trailer fields: the names the client
	// announced, their values once the body has been read to its end. nil
	// when the request has none. It is the client's, unfiltered: the
	// forwarder applies the header rules to it.
	Trailer Header
	// TLS is the connection's TLS state, nil over cleartext.
	TLS *tls.ConnectionState

	// Site is the name of the site the request was routed to.
	Site string
	// AppPath is the virtual path of the application ("/", "/api").
	AppPath string
	// AppDir is the application's folder (REQUEST_FILENAME of URL Rewrite
	// is resolved against it).
	AppDir string

	// Identity is who the authentication stage found the caller to be; nil
	// for an anonymous request. The forwarder hands it to the app.
	Identity *Identity
	// Conn is the state kept for the client connection the request came
	// on (one HTTP/1.1 keep-alive connection, one HTTP/2 connection),
	// shared by its requests and dropped with it; nil when the front door
	// keeps none (HTTP/3). Never shared between connections.
	Conn *Conn

	// Router, set by the front door, tells whether a path belongs to
	// another application of the site. Chain.Serve stops after a stage that
	// rewrote the request into another application, which the front door
	// then routes it to: the rest of this application's stages (its
	// authentication) must not judge another application's request, as
	// in IIS, where they run against the rewritten URL's configuration.
	// nil means no application is elsewhere.
	Router Router

	// Upstream, set by URL Rewrite, is the other server ("host:port") the
	// request goes to over http instead of the application, as IIS's
	// Application Request Routing sends it; "" for the application. Path
	// and RawQuery are then the request on that server. The remaining
	// stages still run (authentication judges it), and it is not routed
	// to another application.
	Upstream string

	// rewritten is set by Rewrite; origPath and origQuery are Path and
	// RawQuery before the first Rewrite.
	rewritten           bool
	origPath, origQuery string
}

// Router is the front door's routing of one site, as the request checks
// and a Chain need it.
type Router interface {
	// Route returns the virtual path of the application path is routed
	// to, as configured ("/", "/api"), or "" when no application takes it.
	Route(path string) string
}

// Identity is an authenticated caller.
type Identity struct {
	// Name is the user: DOMAIN\user for Kerberos with an Active
	// Directory PAC (or as the site's userNameFormat says), "user@REALM"
	// for Kerberos without one, the user name for Basic.
	Name string
	// Aliases are the user's other names (the Kerberos principal, the
	// UPN, DOMAIN\user), which authorization rules also match.
	Aliases []string
	// Scheme is the authentication scheme: "Negotiate", "Basic".
	Scheme string
	// Groups are the caller's groups or roles, where known: group names
	// (DOMAIN\Group), or the SID of an Active Directory group that could
	// not be named. The slice may be shared with the authentication
	// stage's tables: read it, never change it.
	Groups []string
	// GroupSIDs are the SIDs of the caller's Windows groups (the PAC's and
	// the well-known ones a Windows token carries); nil without a PAC.
	GroupSIDs []string
	// Reply is a WWW-Authenticate value the authentication stage sends
	// back with the response (Negotiate's mutual-authentication token);
	// "" for none. It is not forwarded to the app.
	Reply string
}

// Conn is per-connection state the stages keep. The zero value is ready
// to use; it is safe for concurrent use (HTTP/2 streams).
type Conn struct {
	mu sync.Mutex
	// identities holds one login per scope. It stays small: a scope is an
	// application of a site the connection's requests were routed to.
	identities map[Scope]*Identity
}

// Scope is the part of the front door a connection-level login is good
// for: one application of one site. A login never carries over to another
// site (another keytab, another realm of users) or another application
// (other authorization rules), even on the same connection.
type Scope struct {
	Site    string
	AppPath string
}

// ScopeOf is the scope r was routed to.
func ScopeOf(r *Request) Scope { return Scope{Site: r.Site, AppPath: r.AppPath} }

// Identity returns the identity the authentication stage recorded for
// the connection in scope (Negotiate persisted per connection, as IIS's
// authPersistNonNTLM), nil for none.
func (c *Conn) Identity(scope Scope) *Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identities[scope]
}

// SetIdentity records id for the connection's later requests in scope.
func (c *Conn) SetIdentity(scope Scope, id *Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.identities == nil {
		c.identities = make(map[Scope]*Identity, 1)
	}
	c.identities[scope] = id
}

// Rewrite changes the path and query the app sees (URL Rewrite's Rewrite
// action). path must be escaped and start with '/'. It is cleaned and
// checked exactly as a client's path is (CleanPath, then the path checks
// of Validate): a rewritten path the front door would refuse from a client
// ends the request with the 400 Result returned, and r is left as it was.
// Otherwise Rewrite returns nil, and the front door routes the request
// again if the new path belongs to another application.
func (r *Request) Rewrite(path, rawQuery string) *Result {
	path = CleanPath(path)
	if reason := badPath(path, r.Router); reason != "" {
		return Refuse("rewrite", http.StatusBadRequest, 0, "rewritten path "+strconv.Quote(path)+": "+reason)
	}
	if !r.rewritten {
		r.origPath, r.origQuery = r.Path, r.RawQuery
	}
	r.Path, r.RawQuery, r.rewritten = path, rawQuery, true
	return nil
}

// Original returns the path and query before any Rewrite: what the client
// asked for. The access log writes it, as IIS does by default
// (logRewrittenUrl="false").
func (r *Request) Original() (path, rawQuery string) {
	if !r.rewritten {
		return r.Path, r.RawQuery
	}
	return r.origPath, r.origQuery
}

// Rewritten reports whether a stage called Rewrite.
func (r *Request) Rewritten() bool { return r.rewritten }

// Reset clears r for reuse from a pool, keeping nothing that points into
// the finished request.
func (r *Request) Reset() { *r = Request{} }

// RequestURI returns Path and RawQuery as a request target.
func (r *Request) RequestURI() string {
	if r.RawQuery == "" {
		return r.Path
	}
	return r.Path + "?" + r.RawQuery
}

// Header is a request or response header as the stages see it, on either
// path. Names are matched without regard to case.
type Header interface {
	// Get returns the first value of name, or "".
	Get(name string) string
	// Values calls f for each value of name in order, until f returns false.
	Values(name string, f func(value string) bool)
	// Range calls f for each field in order, until f returns false. name is
	// as the implementation stores it (canonical on the net/http path).
	Range(f func(name, value string) bool)
	// Set replaces every value of name with value.
	Set(name, value string)
	// Add appends a value to name.
	Add(name, value string)
	// Del removes every value of name.
	Del(name string)
}

// Stage is one step on the way in. Serve inspects r and may change it
// (the header, Rewrite, Identity). It returns nil to pass r on to the next
// stage, or a Result that ends the request there.
//
// Serve is called concurrently for many requests: a Stage is immutable
// after it is built, or guards its own state.
type Stage interface {
	Serve(r *Request) *Result
}

// StageFunc adapts a function to a Stage.
type StageFunc func(r *Request) *Result

// Serve calls f(r).
func (f StageFunc) Serve(r *Request) *Result { return f(r) }

// OutStage is one step on the way out (custom headers, compression). Respond
// is called once per response, before its status line and header are
// written, for responses from the app and from the front door alike. It may
// change h. It returns a function that wraps the body writer (compression),
// or nil to leave the body as it is.
type OutStage interface {
	Respond(r *Request, status int, h Header) func(BodyWriter) BodyWriter
}

// HeaderValueStore is a client response writer that keeps string slots
// for its header's values with the header map, reused from response to
// response: the forwarder stores an app answer's values in them, as
// one-element slices, instead of allocating their backing array for each
// response. The lean HTTP/1.x writer implements it, and the server's
// response writer passes it on.
type HeaderValueStore interface {
	// HeaderValues returns n empty slots, none handed out before in this
	// response. They live as long as the response's header map: the
	// writer clears them with the map when it moves on to its next
	// response, so a caller keeps no reference to them but the map's.
	HeaderValues(n int) []string
}

// BodySplicer is a client response writer that can take body bytes
// straight from the app's TCP connection to the client's, never through
// user space: (*net.TCPConn).ReadFrom moves them with splice(2) through a
// pipe, under both connections' deadlines. The lean HTTP/1.x writer over
// cleartext TCP implements it, and the server's response writer passes it
// on when nothing between it and the app (compression, a custom error
// page) must see the body. The forwarder uses it for large bodies of a
// known length.
type BodySplicer interface {
	// SpliceReady reports whether the next n body bytes may be spliced;
	// when it does, the response so far (header, buffered body) is sent.
	SpliceReady(n int64) bool
	// SpliceBody copies up to n body bytes from src to the client and
	// returns how many it copied: fewer with a nil error when src ended
	// first. On an error, client reports whether the client's side failed.
	SpliceBody(src *net.TCPConn, n int64) (written int64, client bool, err error)
}

// BodyWriter is where a response body goes. Flush pushes what was written
// to the client (streaming); Close ends the body (a compressor writes its
// trailer). The writer a wrapper receives is closed by the wrapper's Close.
type BodyWriter interface {
	io.Writer
	Flush() error
	Close() error
}

// Chain is one application's stages, in IIS's order. The zero Chain (and a
// nil *Chain) has no stages. A Chain must not be changed once requests use it.
type Chain struct {
	// In are the stages on the way in, run in order until one returns a
	// Result.
	In []Stage
	// Out are the stages on the way out, run in order over the response
	// header; body wrappers are applied in the same order, so the first
	// OutStage's wrapper is closest to the app.
	Out []OutStage
	// Observers are told about every finished request of the application.
	Observers []Observer
	// EndObservers are told when the answer to a request of the
	// application is written, before its end is sent (see EndObserver).
	EndObservers []EndObserver
	// Errors, when set, are the application's custom error pages: the
	// front door answers its error responses with them (see ErrorPages).
	Errors ErrorPages
	// Limits, when set, are the application's own request limits (IIS
	// requestFiltering/requestLimits in its web.config): the front door
	// checks them instead of the site's.
	Limits *Limits
}

// Serve runs the inbound stages over r. It returns the Result of the stage
// that ended the request, or nil when r should go on: to the app, or, when
// a stage rewrote it into another application (see Request.Router),
// without the remaining stages, to that application.
func (c *Chain) Serve(r *Request) *Result {
	if c == nil {
		return nil
	}
	for _, s := range c.In {
		before := r.Path
		if res := s.Serve(r); res != nil {
			return res
		}
		if r.Path != before && r.rewritten && r.Upstream == "" && r.Router != nil && r.Router.Route(r.Path) != r.AppPath {
			return nil // rewritten into another application: its stages run next
		}
	}
	return nil
}

// Respond runs the outbound stages over a response's status and header. It
// returns body unchanged when no stage wraps it.
func (c *Chain) Respond(r *Request, status int, h Header, body BodyWriter) BodyWriter {
	if c == nil {
		return body
	}
	var buf [4]func(BodyWriter) BodyWriter
	wraps := buf[:0]
	for _, s := range c.Out {
		if wrap := s.Respond(r, status, h); wrap != nil {
			wraps = append(wraps, wrap)
		}
	}
	// The first stage's wrapper is closest to the app: it wraps the
	// writers of the stages after it (outbound rules on the body see the
	// app's bytes, and compression sees theirs).
	for i := len(wraps) - 1; i >= 0; i-- {
		body = wraps[i](body)
	}
	return body
}

// HasOut reports whether any outbound stage is configured.
func (c *Chain) HasOut() bool { return c != nil && len(c.Out) > 0 }

// App is one application's settings in force, as one immutable snapshot:
// its stages and the way to hand it a request. The front door takes an
// application's App once per request (so the stages that judged a request
// and the forwarder that sends it belong to the same configuration) and
// uses it for that whole request.
type App interface {
	// Chain returns the application's stages; nil when it has none.
	Chain() *Chain
	// Forward hands r, as the stages left it, to the application and
	// answers through w: the only way a request reaches an application,
	// from every protocol. body is the request body, nil when
	// r.ContentLength is 0. ctx ends when the client goes away.
	Forward(ctx context.Context, w http.ResponseWriter, r *Request, body io.Reader)
}

// Done describes a finished request for the Observers.
type Done struct {
	// Request is the request as the stages left it (rewritten path,
	// identity). Valid only during RequestDone.
	Request *Request
	// App is the application's virtual path; empty when no application
	// took the request (unknown host, no matching path).
	App string
	// Start is when the request's header had been read.
	Start time.Time
	// Duration is from Start to the last byte of the response.
	Duration time.Duration
	// FirstByte is the time from Start to the app's response header; 0 when
	// the app did not answer.
	FirstByte time.Duration
	// Status is the status sent to the client; 499 when the client went
	// away before any answer. A response the client left before it was
	// complete keeps the status that was sent; ClientGone is set in both
	// cases.
	Status int
	// Substatus is IIS's sub-status (5 for 502.5), 0 if none.
	Substatus int
	// BytesIn and BytesOut are the request and response body bytes.
	BytesIn, BytesOut int64
	// PID is the app process that served the request, 0 if none.
	PID int
	// ClientGone is set when the client closed the connection or reset the
	// stream before the response was complete.
	ClientGone bool
	// Upgraded is set for a request that switched protocols (WebSocket).
	Upgraded bool
}

// Observer is told about each finished request: the access log, metrics.
// RequestDone runs on the request's goroutine, after the response: it must
// be quick and must not keep d or d.Request.
type Observer interface {
	RequestDone(d *Done)
}

// An EndObserver (Chain.EndObservers) is told, by RequestEnded, when the
// request's answer has been written but before its end goes to the client
// (IIS's EndRequest, which comes before the answer's final send, where the
// Observers' RequestDone comes once it was sent, with a time-taken that
// includes it): a count of requests in progress ends there, so a client
// that had its whole answer never finds that request still counted. A
// request URL Rewrite sends on to another application ends for the first
// one when it leaves it, once: its stages ran, but it is not its to
// answer. It is not told of a request that ended in a panic: one that is also an
// Observer learns of that from RequestDone. RequestEnded runs on the
// request's goroutine and must not keep r.
type EndObserver interface {
	RequestEnded(r *Request)
}
