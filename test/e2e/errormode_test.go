package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartupFailureDetailsLocalOnly shows the 502.5 page of an app that
// prints a secret and exits, to a client on this machine and to one in
// another network namespace (a different host as far as Gatehouse can
// tell), for each <httpErrors errorMode>.
func TestStartupFailureDetailsLocalOnly(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	const secret = "configured to exit with status 7" // the app's output
	app := func(errorMode string) string {
		dir := writeApp(t, testappAttrs("-exit-at-start 7"), "")
		if errorMode != "" {
			wc := filepath.Join(dir, "web.config")
			writeFile(t, wc, strings.Replace(readFile(t, wc), "<aspNetCore ", fmt.Sprintf(`<httpErrors errorMode=%q/><aspNetCore `, errorMode), 1))
		}
		return dir
	}
	def, custom, detailed := app(""), app("Custom"), app("Detailed")
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`shutdownTimeout: 10s
sites:
  - name: s
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
      - {scheme: http, address: %s, port: 0}
    applications:
      - {path: /, dir: %s}
      - {path: /custom, dir: %s}
      - {path: /detailed, dir: %s}
`, ns.HostIP, def, custom, detailed))
	t.Cleanup(func() {
		for _, d := range []string{def, custom, detailed} {
			waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(d)) == 0 })
		}
	})
	g := start(t, "", "serve", "--config", cfgFile)
	// start returned at the first "listening" record; the other follows.
	var loopAddr, nsAddr string
	waitFor(t, 10*time.Second, "both listeners in the log", func() bool {
		for _, a := range g.listeners() {
			switch host, _, _ := net.SplitHostPort(a); host {
			case "127.0.0.1":
				loopAddr = a
			case ns.HostIP:
				nsAddr = a
			}
		}
		return loopAddr != "" && nsAddr != ""
	})
	local, remote := &http.Client{Timeout: 30 * time.Second}, ns.Client(t)
	for _, tc := range []struct {
		who         string
		c           *http.Client
		addr, path  string
		wantDetails bool
	}{
		{"loopback, default", local, loopAddr, "/", true},
		{"this machine's own address, default", local, nsAddr, "/", true},
		{"another host, default", remote, nsAddr, "/", false},
		{"loopback, Custom", local, loopAddr, "/custom/", false},
		{"another host, Detailed", remote, nsAddr, "/detailed/", true},
	} {
		res, err := tc.c.Get("http://" + tc.addr + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.who, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body := string(b)
		if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure") ||
			!strings.Contains(body, "Troubleshooting steps") {
			t.Errorf("%s: not the 502.5 page: %d\n%s", tc.who, res.StatusCode, body)
		}
		for _, detail := range []string{secret, testappBin, "exit code 7"} {
			if got := strings.Contains(body, detail); got != tc.wantDetails {
				t.Errorf("%s: page shows %q: %v, want %v\n%s", tc.who, detail, got, tc.wantDetails, body)
			}
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
