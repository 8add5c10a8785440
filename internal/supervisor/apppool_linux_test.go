//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

func TestParseStatm(t *testing.T) {
	t.Parallel()
	got, err := parseStatm("5000 1200 200 10 0 900 0\n", 4096)
	if err != nil || got != 1000*4096 {
		t.Errorf("parseStatm = %d, %v; want %d", got, err, 1000*4096)
	}
	if _, err := parseStatm("12", 4096); err == nil {
		t.Error("parseStatm of a short line: no error")
	}
	if got, _ := parseStatm("10 5 9 0 0 0 0", 4096); got != 0 {
		t.Errorf("shared above resident: %d, want 0", got)
	}
}

func TestParseOOMKills(t *testing.T) {
	t.Parallel()
	ev := "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n"
	if n := parseOOMKills(ev); n != 1 {
		t.Errorf("oom_kill = %d, want 1", n)
	}
	if n := parseOOMKills("low 0\n"); n != 0 {
		t.Errorf("no oom_kill line: %d, want 0", n)
	}
}

func TestCgroupPaths(t *testing.T) {
	t.Parallel()
	hybrid := "9:name=systemd:/\n4:memory:/x\n0::/\n"
	if p, ok := unifiedPath(hybrid); !ok || p != "/" {
		t.Errorf("unifiedPath = %q %v", p, ok)
	}
	if _, ok := unifiedPath("4:memory:/x\n"); ok {
		t.Error("unifiedPath found a v2 entry in a v1-only file")
	}
	mi := "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"41 31 0:38 /sub /sys/fs/cgroup/uni\\040fied rw,relatime - cgroup2 cgroup2 rw\n"
	m, root, ok := cgroup2Mount(mi)
	if !ok || m != "/sys/fs/cgroup/uni fied" || root != "/sub" {
		t.Errorf("cgroup2Mount = %q %q %v", m, root, ok)
	}
	if _, _, ok := cgroup2Mount("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"); ok {
		t.Error("cgroup2Mount found a mount in a file without cgroup2")
	}
	if got := cpuMax(150); got != "150000 100000" {
		t.Errorf("cpuMax(150) = %q", got)
	}
	if got := cpuMax(0.1); got != "1000 100000" {
		t.Errorf("cpuMax(0.1) = %q, want the kernel minimum", got)
	}
	if got := cgroupName("main/api v2"); got != "main_api_v2" {
		t.Errorf("cgroupName = %q", got)
	}
}

func TestPermits(t *testing.T) {
	t.Parallel()
	id := &Identity{UID: 1001, GID: 1001, Groups: []uint32{50}}
	tests := []struct {
		name           string
		uid, gid, perm uint32
		want           uint32
		ok             bool
	}{
		{"owner rx", 1001, 0, 0o500, accessRead | accessExec, true},
		{"owner bits rule even if others allow", 1001, 0, 0o077, accessRead, false},
		{"primary group", 0, 1001, 0o050, accessRead | accessExec, true},
		{"supplementary group", 0, 50, 0o010, accessExec, true},
		{"group bits rule over others", 0, 50, 0o007, accessExec, false},
		{"others", 0, 0, 0o755, accessRead | accessExec, true},
		{"others denied", 0, 0, 0o750, accessExec, false},
		{"write wanted", 0, 0, 0o755, accessWrite, false},
	}
	for _, tt := range tests {
		if got := permits(id, tt.uid, tt.gid, tt.perm, tt.want); got != tt.ok {
			t.Errorf("%s: permits = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestShimRlimits(t *testing.T) {
	t.Parallel()
	user := &Identity{User: "app", UID: 1001}
	root := &Identity{User: "root", UID: 0, AllowRoot: true}
	tests := []struct {
		name string
		lim  Limits
		id   *Identity
		want string
	}{
		{"none", Limits{}, nil, ""},
		{"memory", Limits{Memory: 1 << 30}, nil, "as=1073741824"},
		{"processes without a user", Limits{Processes: 10}, nil, ""},
		{"processes as root", Limits{Processes: 10}, root, ""},
		{"processes with a user", Limits{Processes: 10, Memory: 1 << 20}, user, "as=1048576,nproc=10"},
		{"cpu has no rlimit", Limits{CPUPercent: 50}, user, ""},
	}
	for _, tt := range tests {
		got := fallbackRlimits(tt.lim, tt.id)
		if got != tt.want {
			t.Errorf("%s: fallbackRlimits = %q, want %q", tt.name, got, tt.want)
			continue
		}
		if got == "" {
			continue
		}
		m, err := parseShimRlimits(got)
		if err != nil || len(m) != strings.Count(got, ",")+1 {
			t.Errorf("%s: parseShimRlimits(%q) = %v, %v", tt.name, got, m, err)
		}
	}
	if _, err := parseShimRlimits("cpu=5"); err == nil {
		t.Error("parseShimRlimits accepted an unknown limit")
	}
}

func TestRootIdentityRefused(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	spec.AppPool.Identity = &Identity{User: "root"}
	f := newFixture(t, spec)
	err := f.pool.Start(ctxT(t, 10*time.Second))
	if !errors.Is(err, ErrRootIdentity) || !errors.Is(err, upstream.ErrStartupFailed) {
		t.Fatalf("Start = %v, want a start error wrapping ErrRootIdentity", err)
	}
}

func TestCanSwitchTo(t *testing.T) {
	t.Parallel()
	app := &Identity{User: "app", UID: 1001, GID: 1001}
	self := &Identity{User: "me", UID: 500, GID: 500}
	tests := []struct {
		name       string
		id         *Identity
		euid, egid int
		caps       uint64
		ok         bool
	}{
		{"root", app, 0, 0, 0, true},
		{"capabilities", app, 500, 500, capSetuid | capSetgid, true},
		{"only CAP_SETUID", app, 500, 500, capSetuid, false},
		{"no capabilities", app, 500, 500, 0, false},
		{"own user", self, 500, 500, 0, true},
		{"own user, other group", &Identity{User: "me", UID: 500, GID: 1}, 500, 500, 0, false},
	}
	for _, tt := range tests {
		err := canSwitchTo(tt.id, tt.euid, tt.egid, tt.caps)
		if (err == nil) != tt.ok {
			t.Errorf("%s: canSwitchTo = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "CAP_SETUID") {
			t.Errorf("%s: error %q does not name the capabilities", tt.name, err)
		}
	}
}

func TestCgroup1Parsing(t *testing.T) {
	t.Parallel()
	mi := "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"32 31 0:29 /sub /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	m := cgroup1Mounts(mi)
	if m["memory"] != (mountPoint{"/sys/fs/cgroup/memory", "/"}) || m["cpu"] != (mountPoint{"/sys/fs/cgroup/cpu,cpuacct", "/sub"}) {
		t.Errorf("cgroup1Mounts = %v", m)
	}
	if _, ok := m["pids"]; ok {
		t.Error("pids found though not mounted")
	}
	p := cgroup1Paths("4:memory:/process_api/x\n2:cpu,cpuacct:/sub/y\n0::/\n")
	if p["memory"] != "/process_api/x" || p["cpu"] != "/sub/y" || p["cpuacct"] != "/sub/y" {
		t.Errorf("cgroup1Paths = %v", p)
	}
	if _, ok := p[""]; ok {
		t.Error("the v2 line was read as a v1 controller")
	}
}

func TestRemoveStale(t *testing.T) {
	t.Parallel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip("no true:", err)
	}
	dir := t.TempDir()
	deadName := fmt.Sprintf("app-main_api-%d-3", gone.Process.Pid)
	names := []string{deadName, fmt.Sprintf("app-main-%d-1", os.Getpid()), "app-x", "other-1-2-3"}
	for _, n := range names {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStale(dir)
	for _, n := range names {
		_, err := os.Stat(filepath.Join(dir, n))
		if gone := errors.Is(err, os.ErrNotExist); gone != (n == deadName) {
			t.Errorf("%s: removed %v, want %v", n, gone, n == deadName)
		}
	}
}

// A start that needs only a umask (or a cgroup v1 join) goes through the
// shell shim, not a re-exec of the gatehouse binary; one with rlimits
// still needs the Go shim.
func TestShimChoice(t *testing.T) {
	t.Parallel()
	if shimShell() == "" {
		t.Skip("no /bin/sh")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mask := uint32(0o027)
	for _, tc := range []struct {
		name   string
		limits Limits
		want   string
	}{
		{"umask", Limits{}, "/bin/sh"},
		{"umask and rlimits", Limits{Memory: 512 << 20}, exe},
	} {
		spec := helperSpec(t, "echo")
		spec.AppPool.Umask = &mask
		spec.AppPool.Limits = tc.limits // no Cgroups: limits fall back to rlimits
		p := newFixture(t, spec).pool
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = sysProcAttr()
		cg, _, err := p.preparePool(spec, cmd, "/bin/true")
		cg.remove()
		if err != nil {
			t.Fatalf("%s: preparePool: %v", tc.name, err)
		}
		if cmd.Path != tc.want {
			t.Errorf("%s: the shim is %s, want %s", tc.name, cmd.Path, tc.want)
		}
	}
}

// The shell shim joins the listed cgroups with the program's own pid (exec
// keeps the shell's), sets the umask, removes its settings from the
// environment, and exits 127 with a message when a join fails.
func TestSettingsShellShim(t *testing.T) {
	t.Parallel()
	if shimShell() == "" {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.procs"), filepath.Join(dir, "b.procs")
	cmd := exec.Command("/bin/sh", "-c", settingsShellShim, "/bin/sh", "-c",
		`echo "pid=$$ umask=$(umask) cg=${`+shimCgroupsEnv+`-unset} um=${`+shimUmaskEnv+`-unset} arg=$1"`, "sh", "two words")
	cmd.Env = append(os.Environ(), shimCgroupsEnv+"="+a+":"+b, shimUmaskEnv+"=027")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shim: %v", err)
	}
	var pid int
	var rest string
	if _, err := fmt.Sscanf(string(out), "pid=%d %s", &pid, &rest); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if want := fmt.Sprintf("pid=%d umask=0027 cg=unset um=unset arg=two words\n", pid); string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	for _, f := range []string{a, b} {
		if got, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(got)) != fmt.Sprint(pid) {
			t.Errorf("%s = %q, %v; want the program's pid %d", f, got, err, pid)
		}
	}

	cmd = exec.Command("/bin/sh", "-c", settingsShellShim, "/bin/true")
	cmd.Env = append(os.Environ(), shimCgroupsEnv+"="+filepath.Join(dir, "missing", "cgroup.procs"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || !strings.Contains(stderr.String(), "gatehouse shim: join cgroup") {
		t.Errorf("failed join: %v, stderr %q; want exit 127 and the shim's message", err, stderr.String())
	}
}
