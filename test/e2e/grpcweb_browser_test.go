package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// browserDir holds the browser side of TestGRPCWebBrowser: page.js (the
// gRPC-Web calls), run.mjs (bundles, serves and drives it) and the npm
// packages they use, installed by `npm ci` (.ci/run does it).
var browserDir = filepath.Join("..", "browser")

// chromiumPath is Debian's Chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// grpcWebApp writes an app folder whose web.config runs the interop server
// over h2c with gRPC-Web on, answers CORS preflight requests itself (a URL
// Rewrite CustomResponse: grpc-go answers an OPTIONS request with 405) and
// adds the CORS headers a page on another origin needs with customHeaders.
func grpcWebApp(t *testing.T, bins, grpcWeb string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <handlers>
        <add name="aspNetCore" path="*" verb="*" modules="AspNetCoreModuleV2" resourceType="Unspecified" />
      </handlers>
      <aspNetCore processPath=%q arguments="--port=%%ASPNETCORE_PORT%%">
        <handlerSettings>
          <handlerSetting name="protocol" value="h2c" />
          <handlerSetting name="grpcWeb" value=%q />
        </handlerSettings>
      </aspNetCore>
      <rewrite>
        <rules>
          <rule name="CORS preflight" stopProcessing="true">
            <match url=".*" />
            <conditions><add input="{REQUEST_METHOD}" pattern="^OPTIONS$" /></conditions>
            <action type="CustomResponse" statusCode="204" statusReason="No Content" statusDescription="CORS preflight" />
          </rule>
        </rules>
      </rewrite>
      <httpProtocol>
        <customHeaders>
          <add name="Access-Control-Allow-Origin" value="*" />
          <add name="Access-Control-Allow-Methods" value="POST, OPTIONS" />
          <add name="Access-Control-Allow-Headers" value="content-type, x-grpc-web, x-user-agent, grpc-timeout, x-grpc-test-echo-initial, x-grpc-test-echo-trailing-bin" />
          <add name="Access-Control-Expose-Headers" value="grpc-status, grpc-message, x-grpc-test-echo-initial" />
          <add name="Access-Control-Max-Age" value="600" />
        </customHeaders>
      </httpProtocol>
    </system.webServer>
  </location>
</configuration>
`, filepath.Join(bins, "server"), grpcWeb))
	return dir
}

// browserCall is what the page's gRPC-Web client saw of one call.
type browserCall struct {
	Messages []struct {
		PayloadSize *int `json:"payloadSize"`
		Bytes       *int `json:"bytes"`
	} `json:"messages"`
	Headers map[string]string `json:"headers"`
	Status  *struct {
		Code     int               `json:"code"`
		Details  string            `json:"details"`
		Metadata map[string]string `json:"metadata"`
	} `json:"status"`
	Error *struct {
		Code     int               `json:"code"`
		Message  string            `json:"message"`
		Metadata map[string]string `json:"metadata"`
	} `json:"error"`
}

// needBrowser returns the node binary, or skips the test when Chromium,
// node or the npm packages are missing; under CI (the variable CI set) it
// fails instead, since .ci/run installs them.
func needBrowser(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		msg := what + ": apt-get install -y chromium nodejs npm; cd test/browser && npm ci (.ci/run does both)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(chromiumPath + " is missing")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	for _, pkg := range []string{"grpc-web", "google-protobuf", "esbuild", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", pkg, "package.json")); err != nil {
			missing("the npm package " + pkg + " is not installed in test/browser")
		}
	}
	return node
}

// browserExchange is one request the browser sent and its answer's status
// and protocol ("http/1.1", "h2"), from DevTools' Network domain.
type browserExchange struct {
	Method   string `json:"method"`
	URL      string `json:"url"`
	Status   int    `json:"status"`
	Protocol string `json:"protocol"`
}

// runBrowser runs test/browser/run.mjs against the Gatehouse URLs bases and
// returns the page's results by URL and case name, and the browser's
// exchanges.
func runBrowser(t *testing.T, node string, bases ...string) (map[string]map[string]browserCall, []browserExchange) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"run.mjs"}, bases...)...)
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	// SIGTERM first: playwright then closes the browser it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("browser output:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("node run.mjs: %v", err)
	}
	var out struct {
		Origin    string            `json:"origin"`
		Results   json.RawMessage   `json:"results"`
		Exchanges []browserExchange `json:"exchanges"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("the page's results: %v\n%s", err, stdout.String())
	}
	var failed struct{ Error string }
	if json.Unmarshal(out.Results, &failed) == nil && failed.Error != "" {
		t.Fatalf("the page failed: %s", failed.Error)
	}
	var results map[string]map[string]browserCall
	if err := json.Unmarshal(out.Results, &results); err != nil {
		t.Fatalf("the page's results: %v\n%s", err, out.Results)
	}
	t.Logf("page origin %s: %s", out.Origin, stdout.String())
	return results, out.Exchanges
}

// checkBrowserCalls checks what the page's client saw of each case against
// one Gatehouse URL.
func checkBrowserCalls(t *testing.T, base string, calls map[string]browserCall) {
	t.Helper()
	check := func(name string, ok func(c browserCall) bool, want string) {
		t.Helper()
		c, found := calls[name]
		if !found {
			t.Errorf("%s %s: no result from the page", base, name)
			return
		}
		if !ok(c) {
			b, _ := json.Marshal(c)
			t.Errorf("%s %s: the client saw %s; want %s", base, name, b, want)
		}
	}
	succeeded := func(c browserCall) bool {
		return c.Error == nil && c.Status != nil && c.Status.Code == 0
	}
	payloads := func(c browserCall) string {
		var sizes []int
		for _, m := range c.Messages {
			if m.PayloadSize != nil {
				sizes = append(sizes, *m.PayloadSize)
			}
		}
		return fmt.Sprint(sizes)
	}
	// The clients: Google's grpc-web in its two modes and Connect's
	// gRPC-Web transport (binary only), with the Content-Type each sends
	// and must get back.
	contentType := map[string]string{
		"binary": "application/grpc-web+proto", "text": "application/grpc-web-text", "connect": "application/grpc-web+proto",
	}
	for _, mode := range []string{"binary", "text", "connect"} {
		check("empty_unary "+mode, func(c browserCall) bool {
			return succeeded(c) && len(c.Messages) == 1 && c.Messages[0].Bytes != nil && *c.Messages[0].Bytes == 0
		}, "status OK and one empty message")
		check("large_unary "+mode, func(c browserCall) bool {
			return succeeded(c) && payloads(c) == "[314159]"
		}, "status OK and a payload of 314159 bytes")
		check("custom_metadata "+mode, func(c browserCall) bool {
			return succeeded(c) && len(c.Messages) == 1 &&
				c.Headers["x-grpc-test-echo-initial"] == "test_initial_metadata_value" &&
				c.Status.Metadata["x-grpc-test-echo-trailing-bin"] == "q6ur"
		}, "status OK, x-grpc-test-echo-initial in the header and x-grpc-test-echo-trailing-bin (q6ur) in the trailers")
		check("status "+mode, func(c browserCall) bool {
			return c.Error != nil && c.Error.Code == 2 && len(c.Messages) == 0 && c.Error.Metadata["content-type"] == contentType[mode] &&
				c.Error.Message == "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
		}, "UNKNOWN (2) with the special status message")
		check("offline "+mode, func(c browserCall) bool {
			return c.Error != nil && c.Error.Code == 14 && c.Error.Metadata["content-type"] == contentType[mode] &&
				strings.Contains(c.Error.Message, "HTTP Error 503") && !strings.Contains(c.Error.Message, "html")
		}, "UNAVAILABLE (14) naming HTTP Error 503, no HTML, in "+contentType[mode])
	}
	for _, mode := range []string{"text", "connect"} {
		check("server_streaming "+mode, func(c browserCall) bool {
			return succeeded(c) && payloads(c) == "[31415 9 2653 58979]"
		}, "four messages of 31415, 9, 2653 and 58979 bytes, in order, then OK")
	}
	check("unimplemented_method text", func(c browserCall) bool {
		return c.Error != nil && c.Error.Code == 12
	}, "UNIMPLEMENTED (12)")
	if len(calls) != 18 {
		t.Errorf("%s: %d results from the page, want 18", base, len(calls))
	}
}

// TestGRPCWebBrowser runs Google's grpc-web client library (npm grpc-web),
// and Connect's gRPC-Web transport (@connectrpc/connect-web), in headless
// Chromium against grpc-go's interop server hosted by the real binary with
// gRPC-Web on, over HTTP/1.1 and over TLS with HTTP/2. The page
// comes from another origin, so every call is a CORS request, preflights
// answered as web.config says. It checks unary calls in the binary
// (application/grpc-web+proto) and text (application/grpc-web-text) modes
// (Connect: binary only), a server stream in text mode (Connect: binary), custom metadata coming back in the header
// and in the trailers, an error status with a message that needs
// percent-encoding, an unimplemented method, and Gatehouse's own refusal of
// an offline app (app_offline.htm) read by the client as UNAVAILABLE.
func TestGRPCWebBrowser(t *testing.T) {
	t.Parallel()
	node := needBrowser(t)
	bins := interopDir(t)
	p := newPKI(t, t.TempDir())
	app := grpcWebApp(t, bins, "true")
	offline := grpcWebApp(t, bins, "true")
	writeFile(t, filepath.Join(offline, "app_offline.htm"), "<html>down for maintenance</html>")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`shutdownTimeout: 5s
sites:
  - name: grpcweb
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
      - {path: /, dir: %s}
      - {path: /offline, dir: %s}
`, p.certFile, p.keyFile, app, offline))
	t.Cleanup(func() {
		waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(app)) == 0 })
	})
	g := start(t, "", "serve", "--config", cfgFile)
	httpBase := "http://" + g.listenerAddr(t, "http")
	httpsBase := "https://" + g.listenerAddr(t, "https")

	results, exchanges := runBrowser(t, node, httpBase, httpsBase)
	for _, base := range []string{httpBase, httpsBase} {
		checkBrowserCalls(t, base, results[base])
	}
	// The calls went over the protocol each URL stands for, and the
	// browser sent CORS preflights (OPTIONS) to both and got 204.
	wantProto := map[string]string{httpBase: "http/1.1", httpsBase: "h2"}
	preflights := map[string]int{}
	for _, x := range exchanges {
		for base, proto := range wantProto {
			if !strings.HasPrefix(x.URL, base+"/") {
				continue
			}
			if x.Protocol != proto {
				t.Errorf("%s %s over %q, want %s", x.Method, x.URL, x.Protocol, proto)
			}
			if x.Method == http.MethodOptions {
				if x.Status != http.StatusNoContent {
					t.Errorf("preflight %s = %d, want 204", x.URL, x.Status)
				}
				preflights[base]++
			}
		}
	}
	for base := range wantProto {
		if preflights[base] == 0 {
			t.Errorf("no CORS preflight to %s among the browser's requests: %+v", base, exchanges)
		}
	}
}
