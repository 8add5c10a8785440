package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		enabled bool
	}{
		{"all set", map[string]string{EnvPort: "1234", EnvToken: "tok", EnvPathBase: "/app"},
			Config{Port: "1234", Token: "tok", PathBase: "/app"}, true},
		{"site root", map[string]string{EnvPort: "1234", EnvToken: "tok", EnvPathBase: "/"},
			Config{Port: "1234", Token: "tok", PathBase: "/"}, true},
		{"no token", map[string]string{EnvPort: "1234", EnvPathBase: "/"},
			Config{Port: "1234", PathBase: "/"}, false},
		{"no path", map[string]string{EnvPort: "1234", EnvToken: "tok"},
			Config{Port: "1234", Token: "tok"}, false},
		{"HTTP_PLATFORM_PORT fallback", map[string]string{EnvHTTPPlatformPort: "2000", EnvFallbackPort: "3000"},
			Config{Port: "2000"}, false},
		{"PORT fallback", map[string]string{EnvFallbackPort: "3000"}, Config{Port: "3000"}, false},
		{"ASPNETCORE_PORT wins", map[string]string{EnvPort: "1", EnvHTTPPlatformPort: "2", EnvFallbackPort: "3"},
			Config{Port: "1"}, false},
		{"empty", nil, Config{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := configFrom(envMap(tt.env))
			if got != tt.want || got.Enabled() != tt.enabled {
				t.Errorf("configFrom = %+v (enabled %v), want %+v (enabled %v)", got, got.Enabled(), tt.want, tt.enabled)
			}
		})
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestListen(t *testing.T) {
	t.Parallel()
	pid := os.Getpid()
	port := freePort(t)
	t.Run("module port", func(t *testing.T) {
		ln, err := listen("256.0.0.1:0", envMap(map[string]string{EnvPort: port}), pid)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := ln.Addr().String(); got != "127.0.0.1:"+port {
			t.Errorf("listening on %s, want 127.0.0.1:%s", got, port)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		ln, err := listen("127.0.0.1:0", envMap(nil), pid)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if !strings.HasPrefix(ln.Addr().String(), "127.0.0.1:") {
			t.Errorf("listening on %s", ln.Addr())
		}
	})
	t.Run("LISTEN_PID of another process is ignored", func(t *testing.T) {
		env := envMap(map[string]string{EnvListenFDs: "1", EnvListenPID: strconv.Itoa(pid + 1)})
		ln, err := listen("127.0.0.1:0", env, pid)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	})
	for _, bad := range []string{"x", "0", "70000", "-1"} {
		t.Run("invalid port "+bad, func(t *testing.T) {
			if ln, err := listen("127.0.0.1:0", envMap(map[string]string{EnvPort: bad}), pid); err == nil {
				ln.Close()
				t.Fatal("no error")
			}
		})
	}
	t.Run("invalid LISTEN_FDS", func(t *testing.T) {
		env := envMap(map[string]string{EnvListenFDs: "many", EnvListenPID: strconv.Itoa(pid)})
		if ln, err := listen("127.0.0.1:0", env, pid); err == nil {
			ln.Close()
			t.Fatal("no error")
		}
	})
	t.Run("port in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		p := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
		if ln, err := listen("127.0.0.1:0", envMap(map[string]string{EnvPort: p}), pid); err == nil {
			ln.Close()
			t.Fatal("no error")
		}
	})
}

// TestListenSocketActivation hands a bound socket to a re-executed test
// binary as fd 3 and checks that the child serves on it. LISTEN_PID is set
// to the child's own pid by exec'ing through sh, which is how a Go
// supervisor can do it too.
func TestListenSocketActivation(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=activated", EnvListenFDs+"=1",
		EnvPort+"=", EnvHTTPPlatformPort+"=", EnvFallbackPort+"=",
		// A -race child otherwise sleeps 1 s at exit.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close() // the child has its copy; from now on only the child holds the socket

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("read child's first line: %v", err)
	}
	if want := "listening on " + addr + "\n"; line != want {
		t.Errorf("child said %q, want %q", line, want)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set(HeaderToken, "tok")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "pid=" + strconv.Itoa(cmd.Process.Pid) + ` LISTEN_FDS=""`; string(body) != want {
		t.Errorf("child answered %q, want %q", body, want)
	}

	req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/iisintegration", nil)
	req.Header.Set(HeaderToken, "tok")
	req.Header.Set(HeaderEvent, "shutdown")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("shutdown request: status %d, want 202", resp.StatusCode)
	}
	client.CloseIdleConnections()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("child did not exit cleanly after the shutdown request: %v", err)
	}
}
