package proxy

import "strings"

// spoofable are the request headers, in lower case, whose underscore
// spellings a client must not be able to send to the app: the ones
// Gatehouse sets (X-Forwarded-For, X-Forwarded-Proto), forwards with a
// meaning the app trusts (X-Forwarded-Host, and the names forwarding
// middleware and other proxies use for the original client: X-Original-*,
// X-Real-IP, X-Forwarded-Prefix), and the ones it strips (hop-by-hop
// headers, RFC 9110 §7.6.1) or frames the request by (Content-Length,
// Transfer-Encoding). Every name starting with MS-ASPNETCORE is the module's
// and is matched by prefix.
var spoofable = map[string]bool{
	"x-forwarded-for":          true,
	"x-forwarded-proto":        true,
	"x-forwarded-host":         true,
	"x-forwarded-prefix":       true,
	"x-forwarded-port":         true,
	"x-forwarded-ssl":          true,
	"x-original-for":           true,
	"x-original-proto":         true,
	"x-original-host":          true,
	"x-original-url":           true,
	"x-real-ip":                true,
	"x-client-ip":              true,
	"keep-alive":               true,
	"proxy-connection":         true,
	"proxy-authorization":      true,
	"proxy-authenticate":       true,
	"transfer-encoding":        true,
	"content-length":           true,
	"sec-websocket-extensions": true,
}

// underscoreSpoof reports whether the client request header name must be
// dropped because, with every '_' read as '-', it is a header Gatehouse
// sets, strips or frames the request by (see spoofable), or starts with
// MS-ASPNETCORE. CGI-style servers (PHP, WSGI and Rack servers) turn both
// '-' and '_' into '_' (HTTP_X_FORWARDED_FOR), so "X_Forwarded_For: 6.6.6.6"
// would otherwise stand beside, or replace, the value Gatehouse sets.
// Names without '_' are never dropped by this rule; other underscore names
// pass (as "underscores_in_headers on" in nginx).
//
// It is pure and does not allocate for names up to 64 bytes.
func underscoreSpoof(name string) bool {
	if strings.IndexByte(name, '_') < 0 {
		return false
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return false // no spoofable name is that long
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	if len(b) >= len(headerPrefix) && string(b[:len(headerPrefix)]) == "ms-aspnetcore" {
		return true
	}
	return spoofable[string(b)]
}
