package pages

import (
	"net/http"
	"strconv"
	"strings"
)

// gRPC status codes Gatehouse answers with (google.golang.org/grpc/codes).
const (
	GRPCUnknown           = 2
	GRPCDeadlineExceeded  = 4
	GRPCPermissionDenied  = 7
	GRPCResourceExhausted = 8
	GRPCUnimplemented     = 12
	GRPCInternal          = 13
	GRPCUnavailable       = 14
	GRPCUnauthenticated   = 16
)

// IsGRPC reports whether a request's Content-Type is gRPC's
// (application/grpc, application/grpc+proto, application/grpc-web…): its
// client must get gRPC answers, never a page.
func IsGRPC(contentType string) bool {
	const prefix = "application/grpc"
	return len(contentType) >= len(prefix) && strings.EqualFold(contentType[:len(prefix)], prefix) &&
		(len(contentType) == len(prefix) || strings.IndexByte("+-;", contentType[len(prefix)]) >= 0)
}

// GRPCAnswerType returns the Content-Type of the answers Gatehouse makes
// itself (GRPC) to a request whose Content-Type is ct, or "" when ct is not
// gRPC's. A gRPC-Web client gets its own media type back, lower-cased and
// without parameters (application/grpc-web, application/grpc-web-text+proto,
// …), the type of a gRPC-Web answer in the client's format; a client may
// check it before it reads the grpc-status (early releases of Connect's
// gRPC-Web transport did, and took any other type for INTERNAL). Any other
// gRPC client gets application/grpc.
func GRPCAnswerType(ct string) string {
	if !IsGRPC(ct) {
		return ""
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	for _, web := range []string{"application/grpc-web-text", "application/grpc-web"} {
		if rest, ok := strings.CutPrefix(mt, web); ok && (rest == "" || rest[0] == '+' && isFormat(rest[1:])) {
			return mt
		}
	}
	return "application/grpc"
}

// isFormat reports whether s may be the message format after the '+' of a
// gRPC media type ("proto", "json"): letters, digits, '-' and '.'.
func isFormat(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// GRPCCode maps the HTTP status of an answer Gatehouse makes itself to a
// gRPC status, as gRPC maps HTTP statuses (doc/http-grpc-status-mapping.md),
// refined where the front door knows more: a body or header over a limit
// is RESOURCE_EXHAUSTED, a request timeout DEADLINE_EXCEEDED, a bad request
// or a server error INTERNAL.
func GRPCCode(status int) int {
	switch status {
	case http.StatusBadRequest, http.StatusInternalServerError:
		return GRPCInternal
	case http.StatusUnauthorized:
		return GRPCUnauthenticated
	case http.StatusForbidden:
		return GRPCPermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return GRPCUnimplemented
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return GRPCDeadlineExceeded
	case http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
		return GRPCResourceExhausted
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return GRPCUnavailable
	}
	return GRPCUnknown
}

// GRPC writes the answer for a gRPC client in place of a page: HTTP 200
// with no body, the Content-Type contentType (GRPCAnswerType of the
// request's) and the status in the header section (gRPC's
// "Trailers-Only" response), grpc-status code (GRPCCode(status) unless the
// caller knows better) and a grpc-message naming the IIS status and
// substatus ("HTTP Error 503.2 - Service Unavailable"), then reason when
// it is not empty. The access log keeps status and substatus
// (pipeline.SetLogStatus is the caller's).
func GRPC(w http.ResponseWriter, contentType string, status, substatus, code int, reason string) {
	iis := strconv.Itoa(status)
	if substatus != 0 {
		iis += "." + strconv.Itoa(substatus)
	}
	msg := "HTTP Error " + iis + " - " + http.StatusText(status)
	if reason != "" {
		msg += ": " + reason
	}
	h := w.Header()
	setCommonHeaders(h, "")
	delete(h, "Content-Type")
	delete(h, "X-Content-Type-Options")
	h.Set("Content-Type", contentType)
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcEncode(msg))
	w.WriteHeader(http.StatusOK)
}

// grpcEncode percent-encodes a grpc-message value: bytes outside printable
// ASCII, and '%', become %XX.
func grpcEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
