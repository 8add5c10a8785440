package pages

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestIsGRPC(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "Application/GRPC-Web": true,
		"application/grpc-web-text": true, "application/grpc; charset=utf-8": true,
		"application/grpcx": false, "application/json": false, "": false, "text/html": false,
	} {
		if got := IsGRPC(ct); got != want {
			t.Errorf("IsGRPC(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestGRPCAnswerType checks the Content-Type of Gatehouse's own gRPC
// answers: a gRPC-Web client's media type comes back (without parameters),
// any other gRPC client gets application/grpc.
func TestGRPCAnswerType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]string{
		"application/grpc":                         "application/grpc",
		"application/grpc+proto":                   "application/grpc",
		"application/grpc; charset=utf-8":          "application/grpc",
		"application/grpc-web":                     "application/grpc-web",
		"Application/GRPC-Web+proto":               "application/grpc-web+proto",
		"application/grpc-web+json; charset=utf-8": "application/grpc-web+json",
		"application/grpc-web-text":                "application/grpc-web-text",
		"application/grpc-web-text+proto":          "application/grpc-web-text+proto",
		"application/grpc-web-textual":             "application/grpc",
		"application/grpc-web+":                    "application/grpc",
		"application/grpc-web+a b":                 "application/grpc",
		"application/grpcx":                        "",
		"application/json":                         "",
		"":                                         "",
	} {
		if got := GRPCAnswerType(ct); got != want {
			t.Errorf("GRPCAnswerType(%q) = %q, want %q", ct, got, want)
		}
	}
}

// TestGRPC checks the trailers-only answer: 200, no body, the mapped
// grpc-status, the IIS status in grpc-message (percent-encoded), and none
// of a page's header fields.
func TestGRPC(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status, sub, code int
		reason, msg       string
	}{
		{403, 6, GRPCPermissionDenied, "", "HTTP Error 403.6 - Forbidden"},
		{401, 0, GRPCUnauthenticated, "", "HTTP Error 401 - Unauthorized"},
		{413, 0, GRPCResourceExhausted, "", "HTTP Error 413 - Request Entity Too Large"},
		{404, 7, GRPCUnimplemented, "", "HTTP Error 404.7 - Not Found"},
		{503, 2, GRPCUnavailable, "100% busy", "HTTP Error 503.2 - Service Unavailable: 100%25 busy"},
		{502, 5, GRPCUnavailable, "", "HTTP Error 502.5 - Bad Gateway"},
		{400, 0, GRPCInternal, "", "HTTP Error 400 - Bad Request"},
		{408, 0, GRPCDeadlineExceeded, "", "HTTP Error 408 - Request Timeout"},
		{418, 0, GRPCUnknown, "", "HTTP Error 418 - I'm a teapot"},
	} {
		w := httptest.NewRecorder()
		w.Header().Set("Content-Length", "99")
		GRPC(w, "application/grpc", tt.status, tt.sub, GRPCCode(tt.status), tt.reason)
		res := w.Result()
		if res.StatusCode != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("%d.%d: status %d, body %q", tt.status, tt.sub, res.StatusCode, w.Body.String())
		}
		h := res.Header
		if h.Get("Grpc-Status") != itoa(tt.code) || h.Get("Grpc-Message") != tt.msg ||
			h.Get("Content-Type") != "application/grpc" || h.Get("Content-Length") != "" {
			t.Errorf("%d.%d: header %v", tt.status, tt.sub, h)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
