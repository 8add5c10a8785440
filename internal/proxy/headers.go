package proxy

import (
	"crypto/tls"
	"encoding/base64"
	"strings"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// inbound is a client request as the forwarder sees it, taken from the
// front door's pipeline.Request, so the header rules below are written once.
type inbound struct {
	method string
	// path and query make the request target sent to the app: the escaped
	// path, and the query without '?' ("" for none).
	path, query string
	host        string
	// header is the client's header.
	header pipeline.Header
	// contentLength is the body length, -1 if unknown, 0 for no body.
	contentLength int64
	remoteAddr    string
	tls           *tls.ConnectionState
	// trailer holds the request trailers (pipeline.Request.Trailer): their
	// values are there once the body has been read to its end; nil for none.
	trailer pipeline.Header
	// pr is the front door's description of the request.
	pr *pipeline.Request
	// upgrade is the protocol of an Upgrade request ("websocket"), else "".
	upgrade string
	// wsKey is the Sec-WebSocket-Key of a WebSocket the proxy opens on
	// behalf of an extended CONNECT (see extconnect.go), else "".
	wsKey string
	// tunnel: the WebSocket (upgrade is "websocket") goes to an h2c app
	// as an extended CONNECT (h2tunnel.go): no Connection, Upgrade or
	// Sec-WebSocket-Key field is sent.
	tunnel bool
	// identity is the caller to hand to the app (pr.Identity when
	// forwardWindowsAuthToken is on), nil for none.
	identity *pipeline.Identity
}

// get returns the first value of the client header name (canonical form).
func (in *inbound) get(name string) string {
	switch h := in.header.(type) {
	case nil:
		return ""
	case pipeline.HTTPHeader:
		if v := h[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return in.header.Get(name)
}

// has reports whether the client sent the header name (canonical form).
func (in *inbound) has(name string) bool {
	switch h := in.header.(type) {
	case nil:
		return false
	case pipeline.HTTPHeader:
		_, ok := h[name]
		return ok
	case *h1.Header:
		for _, f := range h.Fields {
			if strings.EqualFold(f.Name, name) {
				return true
			}
		}
		return false
	}
	found := false
	in.header.Values(name, func(string) bool { found = true; return false })
	return found
}

// upgradeOf returns the protocol an Upgrade request asks for (Connection:
// upgrade and Upgrade: x), else "".
func upgradeOf(h pipeline.Header) string {
	var up string
	switch hh := h.(type) {
	case nil:
		return ""
	case *h1.Header:
		// h.Get without a call per field: "upgrade" has no k and no s,
		// the only letters a non-ASCII rune folds to (the Kelvin sign, the
		// long s), so a name equal to it ignoring case is as long, and
		// FoldIs is strings.EqualFold.
		for i := range hh.Fields {
			if f := &hh.Fields[i]; h1.FoldIs(f.Name, "upgrade") {
				up = f.Value
				break
			}
		}
	default:
		up = h.Get("Upgrade")
	}
	if up == "" {
		return ""
	}
	found := false
	h.Values("Connection", func(v string) bool {
		found = h1.HasToken(v, "upgrade")
		return !found
	})
	if !found {
		return ""
	}
	return up
}

// fieldSink receives the header fields the rules forward.
type fieldSink interface {
	add(name, value string)
}

// fieldAction is what the request rules do with one client field.
type fieldAction uint8

const (
	fieldKeep fieldAction = iota // forward unchanged
	fieldDrop                    // remove
	fieldXFF                     // X-Forwarded-For: prior value, extended
	fieldXFP                     // X-Forwarded-Proto: prior value, extended
	fieldTE                      // TE: only "trailers" is forwarded
)

// requestFieldRule classifies one client request field by name, ignoring
// case. Fields named in the client's Connection header are dropped by the
// caller as well.
//
//   - MS-ASPNETCORE* (any case, ANCM's 13-character prefix match): dropped,
//     so clients cannot spoof the module's headers; Gatehouse sets its own.
//   - Hop-by-hop fields (RFC 9110 §7.6.1): Connection, Keep-Alive,
//     Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, Trailer,
//     Transfer-Encoding, Upgrade: dropped. TE is forwarded as "trailers" only.
//   - Host and Content-Length: dropped here; the forwarder writes them.
//   - Pseudo-header fields (":protocol" of an extended CONNECT): dropped;
//     they are no header lines.
//   - HTTP2-Settings: dropped (h2c upgrades are not relayed).
//   - X-Forwarded-For and X-Forwarded-Proto: extended (see appendRequestFields).
//   - Underscore spellings of the names Gatehouse sets, strips or frames
//     by (underscoreSpoof): dropped.
//   - Everything else (X-Forwarded-Host and Forwarded included): forwarded.
func requestFieldRule(name string) fieldAction {
	if hasModulePrefix(name) || underscoreSpoof(name) || strings.HasPrefix(name, ":") {
		return fieldDrop
	}
	switch len(name) {
	case 2:
		if h1.FoldIs(name, "te") {
			return fieldTE
		}
	case 4:
		if h1.FoldIs(name, "host") {
			return fieldDrop
		}
	case 7:
		if h1.FoldIs(name, "upgrade") || h1.FoldIs(name, "trailer") {
			return fieldDrop
		}
	case 10:
		if h1.FoldIs(name, "connection") || h1.FoldIs(name, "keep-alive") {
			return fieldDrop
		}
	case 14:
		// HTTP2-Settings belongs to an h2c upgrade (RFC 7540 §3.2.1),
		// which is never relayed.
		if h1.FoldIs(name, "content-length") || h1.FoldIs(name, "http2-settings") {
			return fieldDrop
		}
	case 15:
		if h1.FoldIs(name, "x-forwarded-for") {
			return fieldXFF
		}
	case 16:
		if h1.FoldIs(name, "proxy-connection") {
			return fieldDrop
		}
	case 17:
		if h1.FoldIs(name, "transfer-encoding") {
			return fieldDrop
		}
		if h1.FoldIs(name, "x-forwarded-proto") {
			return fieldXFP
		}
	case 18:
		if h1.FoldIs(name, "proxy-authenticate") {
			return fieldDrop
		}
	case 19:
		if h1.FoldIs(name, "proxy-authorization") {
			return fieldDrop
		}
	}
	return fieldKeep
}

// trailerFieldAllowed reports whether a client's request trailer field
// name reaches the app. Trailers follow the header rules (requestFieldRule):
// only a field the rules forward unchanged may pass, so a trailer can never
// bring in what the header rules remove or set (MS-ASPNETCORE-*,
// X-Forwarded-For and -Proto, Host, hop-by-hop and framing fields, their
// underscore spellings). The name must be a token: it is written as sent.
func trailerFieldAllowed(name string) bool {
	return requestFieldRule(name) == fieldKeep && h1.IsToken(name)
}

// appendTrailerNames appends the Trailer field announcing the client's
// request trailers that may reach the app (trailerFieldAllowed); nothing
// when none may. Names are known before the body is read (the client
// announced them), values only after it.
func appendTrailerNames(b []byte, t pipeline.Header) []byte {
	start := len(b)
	name := func(k string) {
		if !trailerFieldAllowed(k) {
			return
		}
		if len(b) == start {
			b = append(b, "Trailer: "...)
		} else {
			b = append(b, ", "...)
		}
		b = append(b, k...)
	}
	if h, ok := t.(pipeline.HTTPHeader); ok {
		for k := range h { // announced names are keys with no value yet
			name(k)
		}
	} else {
		t.Range(func(k, _ string) bool { name(k); return true })
	}
	if len(b) == start {
		return b
	}
	return append(b, "\r\n"...)
}

// appendTrailers appends the client's request trailer fields that may reach
// the app (trailerFieldAllowed, and a value that cannot break the framing),
// as the trailer section of a chunked body. Call it once the body was read
// to its end.
func appendTrailers(b []byte, t pipeline.Header) []byte {
	t.Range(func(k, v string) bool {
		if trailerFieldAllowed(k) && h1.ValidFieldValue(v) {
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
		return true
	})
	return b
}

// requestFields is appendRequestFields' state: what it collects from the
// client header in one pass. The forwarder keeps one per exchange.
type requestFields struct {
	out        fieldSink
	in         *inbound
	xff, xfp   []string // prior values, in order
	teTrailers bool     // the client accepts trailers
	conn       []string // the client's Connection values (they name hop-by-hop fields)
}

// appendRequestFields writes the header fields the app receives for in to
// out, applying ANCM's request header rules (listed here) on top of the
// hop-by-hop rules: see requestFieldRule for the client's fields; then
// TE: trailers if the client sent it, MS-ASPNETCORE-TOKEN (the lease's
// token), the identity headers MS-ASPNETCORE-USER, -AUTHTYPE, -GROUPS,
// -GROUPSIDS (in.identity, see identity.go), MS-ASPNETCORE-CLIENTCERT (base64 DER of the client certificate,
// only over TLS with one), X-Forwarded-For ("<prior>, " + the peer's
// ip:port, IPv6 bracketed) and X-Forwarded-Proto ("<prior>, " + http or
// https). For an upgrade request it adds Connection: Upgrade and the
// Upgrade field (and, for a WebSocket opened for an extended CONNECT, the
// proxy's Sec-WebSocket-Key in place of the client's), and drops Sec-WebSocket-Extensions for WebSockets (ANCM V2,
// dotnet/aspnetcore#58846). A WebSocket to an h2c app (in.tunnel) gets
// none of Connection, Upgrade and Sec-WebSocket-Key.
//
// Host, the request line and the body framing fields are not written here.
// Every forwarded request, upgrades included, gets its fields from this one
// function; trailers follow the same rule (trailerFieldAllowed). rf is
// scratch state, reused between calls.
func appendRequestFields(rf *requestFields, out fieldSink, in *inbound, token string) {
	*rf = requestFields{out: out, in: in, xff: rf.xff[:0], xfp: rf.xfp[:0], conn: rf.conn[:0]}
	switch h := in.header.(type) {
	case nil:
	case pipeline.HTTPHeader: // the map directly: no closure to allocate
		rf.conn = append(rf.conn, h["Connection"]...)
		for k, vs := range h {
			for _, v := range vs {
				rf.field(k, v)
			}
		}
	case *h1.Header:
		for _, f := range h.Fields {
			if h1.FoldIs(f.Name, "connection") {
				rf.conn = append(rf.conn, f.Value)
			}
		}
		for _, f := range h.Fields {
			rf.field(f.Name, f.Value)
		}
	default:
		h.Values("Connection", rf.addConn)
		h.Range(rf.field)
	}
	if in.upgrade != "" && !in.tunnel {
		out.add("Connection", "Upgrade")
		out.add("Upgrade", in.upgrade)
	}
	if in.wsKey != "" {
		out.add("Sec-Websocket-Key", in.wsKey)
	}
	if rf.teTrailers {
		out.add("Te", "trailers")
	}
	// The module's headers go to the app only: a request for another
	// server (URL Rewrite's upstreams) has no token.
	if token != "" {
		out.add(headerToken, token)
		if in.identity != nil {
			setIdentity(out, in.identity)
		}
		if in.tls != nil && len(in.tls.PeerCertificates) > 0 {
			out.add(headerClientCert, base64.StdEncoding.EncodeToString(in.tls.PeerCertificates[0].Raw))
		}
	}
	// in.remoteAddr is "ip:port", IPv6 bracketed ("[::1]:5017"), which is
	// exactly ANCM's X-Forwarded-For entry (port included).
	out.add("X-Forwarded-For", appendList(rf.xff, in.remoteAddr))
	proto := "http"
	if in.tls != nil {
		proto = "https"
	}
	out.add("X-Forwarded-Proto", appendList(rf.xfp, proto))
	rf.out, rf.in = nil, nil
	clear(rf.xff)
	clear(rf.xfp)
	clear(rf.conn)
}

func (rf *requestFields) addConn(v string) bool {
	rf.conn = append(rf.conn, v)
	return true
}

// field applies the rules to one client field.
func (rf *requestFields) field(name, value string) bool {
	switch requestFieldRule(name) {
	case fieldDrop:
		return true
	case fieldXFF:
		rf.xff = append(rf.xff, value)
		return true
	case fieldXFP:
		rf.xfp = append(rf.xfp, value)
		return true
	case fieldTE:
		if h1.HasToken(value, "trailers") {
			rf.teTrailers = true
		}
		return true
	}
	if rf.in.upgrade == "websocket" && strings.EqualFold(name, "Sec-Websocket-Extensions") {
		return true
	}
	if (rf.in.wsKey != "" || rf.in.tunnel) && strings.EqualFold(name, "Sec-Websocket-Key") {
		// The proxy's own key replaces any the client sent; HTTP/2 has
		// none.
		return true
	}
	if len(rf.conn) != 0 && connectionListed(rf.conn, name) {
		return true
	}
	if !h1.ValidFieldValue(value) {
		return true // never forward a field that would break the framing
	}
	rf.out.add(name, value)
	return true
}

// connectionListed reports whether the Connection field values conn name
// the field name (RFC 9110 §7.6.1: an intermediary removes the fields the
// connection options name, in either direction, before it forwards a
// message), ignoring ASCII case. The options close, keep-alive and
// upgrade name fields the rules remove anyway, or none.
func connectionListed(conn []string, name string) bool {
	for _, c := range conn {
		if h1.HasToken(c, name) {
			return true
		}
	}
	return false
}

// responseFieldRule reports whether the app's response field name reaches
// the client, as in ANCM: MS-ASPNETCORE* (the token must never reach
// a client) and the hop-by-hop fields (Connection, Keep-Alive,
// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade) are removed. The forwarder re-announces
// trailers and, with ForwardResponseConnectionHeader, the Connection field.
func responseFieldRule(name string) bool {
	if hasModulePrefix(name) {
		return false
	}
	switch len(name) {
	case 2:
		return !h1.FoldIs(name, "te")
	case 7:
		return !h1.FoldIs(name, "upgrade") && !h1.FoldIs(name, "trailer")
	case 10:
		return !h1.FoldIs(name, "connection") && !h1.FoldIs(name, "keep-alive")
	case 16:
		return !h1.FoldIs(name, "proxy-connection")
	case 17:
		return !h1.FoldIs(name, "transfer-encoding")
	case 18:
		return !h1.FoldIs(name, "proxy-authenticate")
	case 19:
		return !h1.FoldIs(name, "proxy-authorization")
	}
	return true
}
