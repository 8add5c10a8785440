package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// ppidOf returns the parent pid of pid, 0 if it is gone.
func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestOrphanReaped: an app's grandchild whose parent exited is re-parented
// to Gatehouse (child subreaper, as it would be to Gatehouse as PID 1 in a
// container) and reaped when it exits: no zombie is left.
func TestOrphanReaped(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	g := start(t, dir, "serve", dir)
	gpid := g.cmd.Process.Pid
	pid, err := strconv.Atoi(strings.TrimSpace(g.mustGet("/orphan?ms=500")))
	if err != nil {
		t.Fatal(err)
	}
	if pp := ppidOf(pid); pp != gpid {
		t.Fatalf("orphan %d has parent %d, want gatehouse %d (child subreaper)", pid, pp, gpid)
	}
	// It exits after 0.5 s; a zombie of gatehouse's would stay in /proc.
	waitFor(t, 10*time.Second, "the orphan to be reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	})
	// Gatehouse's own app was not reaped behind its supervisor's back.
	g.mustGet("/pid")
}

// TestSdNotify: Gatehouse tells systemd READY=1 once it listens,
// RELOADING=1 and READY=1 around a reload, and STOPPING=1 at shutdown,
// through a real unixgram socket named in NOTIFY_SOCKET; the app does not
// see NOTIFY_SOCKET.
func TestSdNotify(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var msgs []string
	go func() { // ends when conn is closed
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	got := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), msgs...) }
	has := func(i int, key string) bool {
		m := got()
		return len(m) > i && strings.Contains(m[i], key)
	}

	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := startEnv(t, dir, []string{"NOTIFY_SOCKET=" + sock}, "serve", "--pid-file", pidFile, dir)
	waitFor(t, 5*time.Second, "READY=1", func() bool { return has(0, "READY=1") })
	if m := got()[0]; !strings.Contains(m, "STATUS=serving 1 app(s) on http://127.0.0.1:") || !strings.Contains(m, "MAINPID="+strconv.Itoa(g.cmd.Process.Pid)) {
		t.Errorf("ready message %q lacks the status or MAINPID", m)
	}
	if code, env, _ := g.get("/env?name=NOTIFY_SOCKET"); code != 404 {
		t.Errorf("the app sees NOTIFY_SOCKET=%q", env)
	}
	if code, out := ghctl(t, "reload", "--pid-file", pidFile); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	waitFor(t, 5*time.Second, "RELOADING=1 then READY=1", func() bool { return has(2, "READY=1") })
	if m := got()[1]; !strings.Contains(m, "RELOADING=1") || !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("reload message %q", m)
	}
	g.stop(30 * time.Second)
	waitFor(t, 5*time.Second, "STOPPING=1", func() bool { return has(3, "STOPPING=1") })
}

// TestOwnSocketActivation: Gatehouse serves on a socket it inherits through
// LISTEN_FDS (as systemd's gatehouse.socket hands it) instead of binding.
func TestOwnSocketActivation(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // the duplicate in f keeps the socket open
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	dir := writeApp(t, testappAttrs(""), "")
	// LISTEN_PID must be gatehouse's own pid: the shell execs it, keeping $$.
	shArgs := append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec "$0" "$@"`, gatehouseBin},
		withRoot([]string{"serve", "--log-format", "json", "--listen", "127.0.0.1:" + port, dir})...)
	cmd := exec.Command("/bin/sh", shArgs...)
	cmd.ExtraFiles = []*os.File{f}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(dir)) == 0 })
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", logs.String())
		}
	})
	waitFor(t, 10*time.Second, "gatehouse to use the inherited socket", func() bool {
		return logs.find("using an inherited socket") != nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/pid", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET through the inherited socket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET through the inherited socket = %d", resp.StatusCode)
	}
}

// TestBindErrorSaysWhatToDo: a port below 1024 without the privilege, and a
// port in use, fail with a hint.
func TestBindErrorSaysWhatToDo(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := writeApp(t, testappAttrs(""), "")
	code, out := ghctl(t, "serve", "--admin", "off", "--listen", busy.Addr().String(), dir)
	if code != 1 || !strings.Contains(out, "another program listens there") {
		t.Errorf("port in use: exit %d\n%s", code, out)
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: the privileged-port hint is not reachable here (bindHint is unit-tested)")
		return
	}
	code, out = ghctl(t, "serve", "--admin", "off", "--listen", "127.0.0.1:81", dir)
	if code != 1 || !strings.Contains(out, "cap_net_bind_service") {
		t.Errorf("port 81 as non-root: exit %d\n%s", code, out)
	}
}

// TestSystemdUnits: both service units (gatehouse.service, hardened: all
// runs as the gatehouse user; gatehouse-pools.service: per-pool users and
// limits) pass systemd-analyze verify (with the binary built here in
// ExecStart), the stop timeout covers Gatehouse's drain and the apps' stop
// at their defaults, and each has what its kind of pool needs.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	units := map[string][]string{
		"gatehouse.service": {"User=gatehouse", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "Delegate=yes", "gatehouse-pools.service"},
		"gatehouse-pools.service": {"User=root", "Group=gatehouse", "Delegate=yes",
			"CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_KILL"},
	}
	dir := t.TempDir()
	var files []string
	for name, wants := range units {
		unit, err := os.ReadFile("../../packaging/" + name)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)s$`).FindSubmatch(unit)
		if m == nil {
			t.Fatalf("%s has no TimeoutStopSec=Ns", name)
		}
		if n, _ := strconv.Atoi(string(m[1])); n < 30+10 {
			t.Errorf("%s: TimeoutStopSec=%ds is below shutdownTimeout 30s + shutdownTimeLimit 10s", name, n)
		}
		for _, want := range append(wants, "Type=notify", "ExecReload=/usr/local/bin/gatehouse reload", "KillMode=mixed", "RuntimeDirectory=gatehouse") {
			if !strings.Contains(string(unit), want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		f := filepath.Join(dir, name)
		writeFile(t, f, strings.ReplaceAll(string(unit), "/usr/local/bin/gatehouse", gatehouseBin))
		files = append(files, f)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit files were not verified")
	}
	sock, err := os.ReadFile("../../packaging/gatehouse.socket")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "gatehouse.socket"), string(sock))
	for _, f := range files {
		out, err := exec.Command(analyze, "verify", f, filepath.Join(dir, "gatehouse.socket")).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(f), err, out)
		}
	}
}

// TestKubernetesExample: the grace period covers preStop, the drain and the
// apps' stop, and the probes use the health endpoints of --metrics.
func TestKubernetesExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/kubernetes/gatehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var dep struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Template struct {
				Spec struct {
					Grace      int `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Args      []string `yaml:"args"`
						Readiness struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						Liveness struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						Lifecycle struct {
							PreStop struct {
								Sleep struct{ Seconds int } `yaml:"sleep"`
							} `yaml:"preStop"`
						} `yaml:"lifecycle"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := dec.Decode(&dep); err != nil || dep.Kind != "Deployment" {
		t.Fatalf("first document: %v (kind %q)", err, dep.Kind)
	}
	ps := dep.Spec.Template.Spec
	c := ps.Containers[0]
	if min := c.Lifecycle.PreStop.Sleep.Seconds + 30 + 10; ps.Grace < min {
		t.Errorf("terminationGracePeriodSeconds %d < preStop %ds + shutdownTimeout 30s + shutdownTimeLimit 10s", ps.Grace, c.Lifecycle.PreStop.Sleep.Seconds)
	}
	if c.Readiness.HTTPGet.Path != "/readyz" || c.Liveness.HTTPGet.Path != "/healthz" || !slices.Contains(c.Args, "--metrics") {
		t.Errorf("probes %q %q, args %q: want /readyz and /healthz on --metrics", c.Readiness.HTTPGet.Path, c.Liveness.HTTPGet.Path, c.Args)
	}
}

// TestDockerfileBuilds builds packaging/Dockerfile where a Docker daemon
// runs, and checks the image runs as non-root.
func TestDockerfileBuilds(t *testing.T) {
	t.Parallel()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("SKIP: docker is not installed; packaging/Dockerfile was not built")
	}
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		t.Skipf("SKIP: no Docker daemon reachable (docker info: %v; %s); packaging/Dockerfile was not built", err, lastLineOf(out))
	}
	tag := "gatehouse-e2e:" + strconv.Itoa(os.Getpid())
	out, err := exec.Command(docker, "build", "-f", "../../packaging/Dockerfile", "-t", tag, "../..").CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	defer exec.Command(docker, "rmi", tag).Run()
	user, err := exec.Command(docker, "image", "inspect", "-f", "{{.Config.User}}", tag).Output()
	if err != nil || strings.TrimSpace(string(user)) == "" || strings.HasPrefix(string(user), "0") {
		t.Errorf("image user %q (%v), want a non-root user", user, err)
	}
}

// lastLineOf returns the last line of b: where docker says what is wrong.
func lastLineOf(b []byte) string {
	s := strings.TrimSpace(string(b))
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}
