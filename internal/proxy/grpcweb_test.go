package proxy

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// grpcFrame is one length-prefixed gRPC message.
func grpcFrame(flag byte, msg string) []byte {
	n := len(msg)
	return append([]byte{flag, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, msg...)
}

// TestGRPCWeb checks the gRPC-Web translation with a protocol-level client
// over HTTP/1.1: the app gets gRPC (content type, te: trailers, the text
// body decoded) and the client gets gRPC-Web (its content type, the
// message, then the trailers as the last frame; base64 for the text
// variant). A trailers-only answer keeps its status in the header.
func TestGRPCWeb(t *testing.T) {
	t.Parallel()
	type seen struct{ ct, te, body string }
	got := make(chan seen, 4)
	app := newH2CServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Get("Content-Type"), r.Header.Get("Te"), string(b)}
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		if r.URL.Path == "/svc/Missing" {
			w.Header().Set("Grpc-Status", "12")
			return
		}
		_, _ = w.Write(grpcFrame(0, "pong"))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	})
	h := &Handler{Backend: fixed(app.Listener.Addr().String()), H2C: true, GRPCWeb: true}
	t.Cleanup(h.CloseIdleConnections)
	front := httptest.NewServer(forwardHandler{h: h})
	t.Cleanup(front.Close)

	wantBody := append(grpcFrame(0, "pong"), grpcFrame(0x80, "grpc-message: fine\r\ngrpc-status: 0\r\n")...)
	for _, tt := range []struct {
		ct, appCT, respCT string
		text              bool
	}{
		{"application/grpc-web+proto", "application/grpc+proto", "application/grpc-web+proto", false},
		{"application/grpc-web-text", "application/grpc", "application/grpc-web-text", true},
	} {
		body := grpcFrame(0, "ping")
		if tt.text {
			body = []byte(base64.StdEncoding.EncodeToString(body))
		}
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/svc/Ping", bytes.NewReader(body))
		req.Header.Set("Content-Type", tt.ct)
		res, resBody := get(t, http.DefaultClient, req)
		s := <-got
		if s.ct != tt.appCT || s.te != "trailers" || s.body != string(grpcFrame(0, "ping")) {
			t.Errorf("%s: the app saw %+v", tt.ct, s)
		}
		want := string(wantBody)
		if tt.text {
			// Each piece is encoded on its own, padded.
			want = base64.StdEncoding.EncodeToString(grpcFrame(0, "pong")) +
				base64.StdEncoding.EncodeToString(grpcFrame(0x80, "grpc-message: fine\r\ngrpc-status: 0\r\n"))
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tt.respCT || resBody != want || len(res.Trailer) != 0 {
			t.Errorf("%s: got %d %q body %q trailers %v; want %q body %q",
				tt.ct, res.StatusCode, res.Header.Get("Content-Type"), resBody, res.Trailer, tt.respCT, want)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, front.URL+"/svc/Missing", strings.NewReader(string(grpcFrame(0, ""))))
	req.Header.Set("Content-Type", "application/grpc-web")
	res, resBody := get(t, http.DefaultClient, req)
	<-got
	if res.Header.Get("Grpc-Status") != "12" || resBody != "" {
		t.Errorf("trailers-only: header %v body %q; want grpc-status 12 in the header, no body", res.Header, resBody)
	}
}
