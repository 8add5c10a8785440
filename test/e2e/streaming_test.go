package e2e

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// streamApp writes an app folder whose web.config runs the testapp, with
// dynamic compression and a custom response header when asked.
func streamApp(t *testing.T, compress, headers bool) string {
	t.Helper()
	var extra strings.Builder
	if headers {
		extra.WriteString(`<httpProtocol><customHeaders><add name="X-Stream-Test" value="on" /></customHeaders></httpProtocol>`)
	}
	if compress {
		extra.WriteString(`<urlCompression doDynamicCompression="true" />`)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <handlers>
      <add name="aspNetCore" path="*" verb="*" modules="AspNetCoreModuleV2" resourceType="Unspecified" />
    </handlers>
    <aspNetCore processPath=%q />
    %s
  </system.webServer>
</configuration>
`, testappBin, extra.String()))
	return dir
}

// TestStreamingEventByEvent checks that a streamed response (chunked, each
// write flushed by the app) reaches the client event by event on every
// protocol, with and without stripPathBase, dynamic compression and custom
// headers. It is a handshake, not a timing: the client sends event i on
// the request body and waits for the app's echo of it (the testapp's /echo
// flushes every read) before it sends event i+1, so a front door that holds
// the response until it ends never delivers event 1 and the case fails at
// its deadline.
func TestStreamingEventByEvent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir)
	type app struct {
		path                   string
		strip, compress, heads bool
	}
	var apps []app
	var b strings.Builder
	for _, strip := range []bool{false, true} {
		for _, compress := range []bool{false, true} {
			for _, heads := range []bool{false, true} {
				a := app{fmt.Sprintf("/s%vc%vh%v", strip, compress, heads), strip, compress, heads}
				apps = append(apps, a)
				fmt.Fprintf(&b, "      - {path: %s, dir: %s, stripPathBase: %v}\n", a.path, streamApp(t, compress, heads), strip)
			}
		}
	}
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`protocols: {http3: true}
compression: {minSize: 1}
shutdownTimeout: 2s
sites:
  - name: stream
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
%s`, p.certFile, p.keyFile, b.String()))
	g := startEnv(t, "", nil, "serve", "--config", cfgFile)
	httpAddr, httpsAddr := g.listenerAddr(t, "http"), g.listenerAddr(t, "https")
	tlsCfg := &tls.Config{RootCAs: p.roots, ServerName: "a.example.test"}
	h1 := &http.Transport{DisableCompression: true}
	h2 := &http.Transport{DisableCompression: true, TLSClientConfig: tlsCfg, Protocols: new(http.Protocols)}
	h2.Protocols.SetHTTP2(true)
	h3 := &http3.Transport{TLSClientConfig: tlsCfg, DisableCompression: true}
	t.Cleanup(func() { h1.CloseIdleConnections(); h2.CloseIdleConnections(); _ = h3.Close() })
	protocols := []struct {
		name  string
		base  string
		rt    http.RoundTripper
		major int
	}{
		{"HTTP/1.1", "http://" + httpAddr, h1, 1},
		{"HTTP/2", "https://" + httpsAddr, h2, 2},
		{"HTTP/3", "https://" + httpsAddr, h3, 3},
	}
	for _, proto := range protocols {
		for _, a := range apps {
			name := fmt.Sprintf("%s strip=%v compress=%v headers=%v", proto.name, a.strip, a.compress, a.heads)
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
				defer cancel()
				pr, pw := io.Pipe()
				defer pw.Close()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, proto.base+a.path+"/echo", pr)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = "a.example.test"
				req.Header.Set("Content-Type", "text/plain; charset=utf-8")
				req.Header.Set("Accept-Encoding", "gzip")
				events := []string{"event: 1\ndata: one\n\n", "event: 2\ndata: two\n\n", "event: 3\ndata: three\n\n"}
				sent := make(chan error, 1)
				go func() { // the first event; the rest follow the echoes
					_, err := io.WriteString(pw, events[0])
					sent <- err
				}()
				res, err := (&http.Client{Transport: proto.rt}).Do(req)
				if err != nil {
					t.Fatalf("event 1 did not come back (the response was held): %v", err)
				}
				defer res.Body.Close()
				if err := <-sent; err != nil {
					t.Fatalf("send event 1: %v", err)
				}
				if res.StatusCode != 200 || res.ProtoMajor != proto.major {
					t.Fatalf("%s %d, want %s 200", res.Proto, res.StatusCode, proto.name)
				}
				if got := res.Header.Get("X-Stream-Test") == "on"; got != a.heads {
					t.Errorf("custom header present = %v, want %v", got, a.heads)
				}
				var body io.Reader = res.Body
				if got := res.Header.Get("Content-Encoding") == "gzip"; got != a.compress {
					t.Fatalf("Content-Encoding %q, want gzip = %v", res.Header.Get("Content-Encoding"), a.compress)
				}
				if a.compress {
					if body, err = gzip.NewReader(res.Body); err != nil {
						t.Fatalf("gzip header of event 1: %v", err)
					}
				}
				for i, ev := range events {
					if i > 0 {
						if _, err := io.WriteString(pw, ev); err != nil {
							t.Fatalf("send event %d: %v", i+1, err)
						}
					}
					got := make([]byte, len(ev))
					if _, err := io.ReadFull(body, got); err != nil {
						t.Fatalf("event %d did not come back: %v", i+1, err)
					}
					if string(got) != ev {
						t.Fatalf("event %d came back as %q, want %q", i+1, got, ev)
					}
				}
				_ = pw.Close()
				if rest, err := io.ReadAll(body); err != nil || len(rest) != 0 {
					t.Errorf("after the last event: %q, %v", rest, err)
				}
			})
		}
	}
}
