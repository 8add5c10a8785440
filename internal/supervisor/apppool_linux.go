//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// preparePool applies spec.AppPool to cmd, which runs prog and has its
// SysProcAttr set: the working folder, the identity (after checking that it
// may use the folder and run the program), a cgroup with the limits
// (returned) or the rlimit fallback, and the umask. Umask and rlimits need
// the re-exec shim, so cmd is rewritten to run through it when they apply.
// On failure it returns a StartError reason and the error; a cgroup it made
// is removed again.
func (p *Pool) preparePool(spec Spec, cmd *exec.Cmd, prog string) (cg *cgroup, reason string, err error) {
	defer func() {
		if err != nil {
			cg.remove()
			cg = nil
		}
	}()
	ap := spec.AppPool
	if ap.WorkDir != "" {
		cmd.Dir = ap.WorkDir
	}
	if err := setIdentity(cmd, ap.Identity); err != nil {
		return nil, "the app's user is not allowed", err
	}
	if id := ap.Identity; id != nil {
		if err := checkAccess(id, cmd.Dir, accessRead|accessExec, "working folder"); err != nil {
			return nil, "the app's user cannot use its folder", err
		}
		if err := checkAccess(id, prog, accessExec, "program"); err != nil {
			return nil, "the app's user cannot run the program", err
		}
		if cmd.Path != prog { // the socket-activation shim
			if err := checkAccess(id, cmd.Path, accessExec, "socket-activation shim"); err != nil {
				return nil, "the app's user cannot run the shim", err
			}
		}
		if err := giveNotifySocket(cmd.Env, id); err != nil {
			return nil, "could not hand the notify socket to the app's user", err
		}
	}
	var shim []string
	if ap.Umask != nil {
		shim = append(shim, shimUmaskEnv+"="+strconv.FormatUint(uint64(*ap.Umask), 8))
	}
	if ap.Limits.any() {
		if cg, err = ap.Cgroups.create(spec.Name, ap.Limits, p.log); err != nil {
			return nil, "could not create the app's cgroup", err
		}
		switch {
		case cg != nil && len(cg.v1) > 0:
			join, err := cg.joinV1(ap.Identity)
			if err != nil {
				return cg, "could not create the app's cgroup", err
			}
			shim = append(shim, join)
		case cg != nil:
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = cg.fd
		default:
			if rl := fallbackRlimits(ap.Limits, ap.Identity); rl != "" {
				shim = append(shim, shimRlimitsEnv+"="+rl)
			}
		}
	}
	if len(shim) == 0 {
		return cg, "", nil
	}
	if p.shell != "" && !slices.ContainsFunc(shim, func(kv string) bool { return strings.HasPrefix(kv, shimRlimitsEnv+"=") }) {
		// A cgroup v1 join and a umask need no Go runtime start in
		// between (~5–25 ms on a busy machine): the shell does both.
		if err := checkAccess(ap.Identity, p.shell, accessExec, "shell (the umask and cgroup shim)"); err != nil {
			return cg, "the app's user cannot run the shell shim", err
		}
		cmd.Path = p.shell
		cmd.Args = append([]string{p.shell, "-c", settingsShellShim}, cmd.Args...)
		cmd.Env = append(cmd.Env, shim...)
		return cg, "", nil
	}
	if !slices.Contains(cmd.Env, shimEnv+"=1") { // not yet shimmed for socket activation
		exe, err := os.Executable()
		if err != nil {
			return cg, "could not find the gatehouse executable for the shim", err
		}
		if err := checkAccess(ap.Identity, exe, accessExec, "gatehouse executable (the umask and rlimit shim)"); err != nil {
			return cg, "the app's user cannot run the gatehouse shim", err
		}
		cmd.Path = exe
		cmd.Args = append([]string{exe}, cmd.Args...)
		shim = append(shim, shimEnv+"=1")
	}
	cmd.Env = append(cmd.Env, shim...)
	return cg, "", nil
}

// giveNotifySocket makes the NOTIFY_SOCKET in env, and its private folder,
// the identity's, so that the app can send READY=1 to it.
func giveNotifySocket(env []string, id *Identity) error {
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			for _, f := range []string{filepath.Dir(path), path} {
				if err := os.Chown(f, int(id.UID), int(id.GID)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// oomReason is the StartError reason for a process the OOM killer ended
// while it started.
func oomReason(cause string) string {
	return fmt.Sprintf("process exited during startup: %s", cause)
}
