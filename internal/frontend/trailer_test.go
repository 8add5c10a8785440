package frontend_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// TestRequestTrailersFollowHeaderRules sends request trailers over HTTP/2
// and h2c through the front door and the forwarder to a Go app: trailers
// named like the fields Gatehouse sets or strips (MS-ASPNETCORE-USER,
// -TOKEN, X-Forwarded-For and -Proto, their underscore
// spellings) never reach the app; an ordinary trailer does.
func TestRequestTrailersFollowHeaderRules(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		seen := map[string][]string{}
		for k, vs := range r.Trailer {
			if len(vs) > 0 {
				seen[k] = vs
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"trailer": seen, "xff": r.Header.Values("X-Forwarded-For")})
	}))
	t.Cleanup(back.Close)
	e := newEnv(t, "app")
	cfg := e.config(t, `
protocols: {h2c: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: app}]
`)
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		return proxyApp{&proxy.Handler{Backend: fixedBackend(back.Listener.Addr().String()), RequestTimeout: time.Minute}}, nil
	}
	srv, err := frontend.New(cfg, open, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	forged := map[string]string{
		"Ms-Aspnetcore-User":  "admin",
		"Ms-Aspnetcore-Token": "forged-token",
		"X-Forwarded-For":     "6.6.6.6",
		"X-Forwarded-Proto":   "https",
		"X_forwarded_for":     "6.6.6.6",
		"Ms_aspnetcore_user":  "admin",
	}
	for _, m := range []mode{h2c, h2} {
		t.Run(string(m), func(t *testing.T) {
			binding := "http"
			if m.tls() {
				binding = "https"
			}
			c := client(t, m, addrOf(t, s, binding, m), e.pki, false)
			req, err := http.NewRequest(http.MethodPost, m.url("localhost", "/upload"), io.NopCloser(strings.NewReader("body")))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1 // a streamed body: trailers follow it
			req.Trailer = http.Header{"X-Checksum": {"abc"}}
			for k, v := range forged {
				req.Trailer[k] = []string{v}
			}
			res, body := do(t, c, req)
			if res.StatusCode != 200 || res.ProtoMajor != 2 {
				t.Fatalf("%s: %d %s", res.Proto, res.StatusCode, body)
			}
			var got struct {
				Trailer map[string][]string
				XFF     []string
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("app answer %q: %v", body, err)
			}
			if v := got.Trailer["X-Checksum"]; len(v) != 1 || v[0] != "abc" {
				t.Errorf("the ordinary trailer did not reach the app: %v", got.Trailer)
			}
			for k := range forged {
				if v, ok := got.Trailer[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("trailer %s reached the app: %q", k, v)
				}
			}
			if len(got.XFF) != 1 || strings.Contains(got.XFF[0], "6.6.6.6") {
				t.Errorf("X-Forwarded-For = %q, want only the peer", got.XFF)
			}
		})
	}
}
