package proxy

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"slices"
	"strings"
)

// gRPC-Web (Handler.GRPCWeb) is gRPC for browsers, which cannot read HTTP
// trailers: the client sends application/grpc-web (binary) or
// application/grpc-web-text (base64) over HTTP/1.1 or HTTP/2, and the
// answer carries the trailers at the end of the body, as one more frame
// whose flag byte has its high bit set. The forwarder translates as
// Envoy's grpc_web filter does: the request goes to the app as gRPC
// (application/grpc, te: trailers, the text body decoded), and the answer
// comes back as gRPC-Web (its content type, the trailers as the last frame,
// the text variant base64-encoded piece by piece, each piece padded, as
// gRPC-Web clients read it). A trailers-only answer (the status in the
// header section) passes as it is: gRPC-Web allows it. CORS is left to
// customHeaders.

// webMode says how a request is translated.
type webMode uint8

const (
	webNone   webMode = iota // gRPC or anything else: forwarded as it is
	webBinary                // application/grpc-web[+proto]
	webText                  // application/grpc-web-text[+proto]
)

const (
	grpcPrefix = "application/grpc"
	webInfix   = "-web"
	textInfix  = "-web-text"
)

// grpcWebMode returns the gRPC-Web variant of the content type ct.
func grpcWebMode(ct string) webMode {
	if len(ct) <= len(grpcPrefix) || !strings.EqualFold(ct[:len(grpcPrefix)], grpcPrefix) {
		return webNone
	}
	rest := ct[len(grpcPrefix):]
	switch {
	case hasFoldPrefix(rest, textInfix) && suffixOK(rest[len(textInfix):]):
		return webText
	case hasFoldPrefix(rest, webInfix) && suffixOK(rest[len(webInfix):]):
		return webBinary
	}
	return webNone
}

// suffixOK reports whether s may follow the gRPC-Web media type: nothing,
// a +format, or parameters.
func suffixOK(s string) bool { return s == "" || s[0] == '+' || s[0] == ';' }

func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// grpcContentType returns the gRPC content type for the gRPC-Web one ct
// ("application/grpc-web-text+proto" → "application/grpc+proto").
func grpcContentType(ct string, mode webMode) string {
	infix := webInfix
	if mode == webText {
		infix = textInfix
	}
	return grpcPrefix + ct[len(grpcPrefix)+len(infix):]
}

// webContentType returns the gRPC-Web content type for the app's gRPC one
// ("application/grpc+proto" → "application/grpc-web+proto").
func webContentType(ct string, mode webMode) string {
	infix := webInfix
	if mode == webText {
		infix = textInfix
	}
	if !hasFoldPrefix(ct, grpcPrefix) {
		return grpcPrefix + infix
	}
	return grpcPrefix + infix + ct[len(grpcPrefix):]
}

// webRequest turns the request fields the rules produced into gRPC's:
// the content type, and te: trailers, which gRPC servers expect.
func webRequest(f *h2Fields, mode webMode) {
	var ct string
	kept := (*f)[:0]
	for _, kv := range *f {
		switch {
		case strings.EqualFold(kv[0], "Content-Type"):
			if ct == "" {
				ct = kv[1]
			}
		case strings.EqualFold(kv[0], "Te"):
		default:
			kept = append(kept, kv)
		}
	}
	*f = append(kept, [2]string{"Content-Type", grpcContentType(ct, mode)}, [2]string{"Te", "trailers"})
}

// webBody returns the body the app gets for a gRPC-Web request: the text
// variant decoded.
func webBody(body io.Reader, mode webMode) io.Reader {
	if mode == webText {
		return base64.NewDecoder(base64.StdEncoding, body)
	}
	return body
}

// webTrailerFrame returns the gRPC-Web trailer frame for the app's
// trailers: flag 0x80, the length, then "name: value\r\n" lines with
// lower-case names, in a stable order.
func webTrailerFrame(t http.Header) []byte {
	keys := make([]string, 0, len(t))
	for k := range t {
		if trailerAllowed(http.CanonicalHeaderKey(k)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b := make([]byte, 5, 64)
	for _, k := range keys {
		for _, v := range t[k] {
			b = append(b, strings.ToLower(k)...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b[0] = 0x80
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	return b
}

// webEncode returns p as the client's variant carries it: as is, or
// base64 (each piece padded on its own).
func webEncode(p []byte, mode webMode, scratch []byte) []byte {
	if mode != webText {
		return p
	}
	return base64.StdEncoding.AppendEncode(scratch[:0], p)
}
