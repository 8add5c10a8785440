//go:build linux

package supervisor

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// setIdentity makes cmd run as id (nil: as Gatehouse). The kernel refuses it
// at start with EPERM unless Gatehouse is root or holds CAP_SETUID and
// CAP_SETGID. Go's fork sets Pdeathsig after the credentials, so the
// parent-death signal survives the switch.
func setIdentity(cmd *exec.Cmd, id *Identity) error {
	if id == nil {
		return nil
	}
	if id.UID == 0 && !id.AllowRoot {
		return ErrRootIdentity
	}
	euid, egid, caps := os.Geteuid(), os.Getegid(), capEff()
	if err := canSwitchTo(id, euid, egid, caps); err != nil {
		return err
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{
		Uid:    id.UID,
		Gid:    id.GID,
		Groups: append([]uint32{}, id.Groups...), // non-nil: setgroups is always called
	}
	if euid != 0 && caps&capSetgid == 0 {
		// Gatehouse's own user without privileges: setgroups would fail,
		// so the process keeps Gatehouse's supplementary groups.
		cmd.SysProcAttr.Credential.NoSetGroups = true
	}
	return nil
}

// Capability bits of CAP_SETGID and CAP_SETUID.
const (
	capSetgid = 1 << 6
	capSetuid = 1 << 7
)

// canSwitchTo says, before the fork fails with a bare EPERM, why a Gatehouse
// running with euid/egid and the effective capabilities capEff cannot start
// a process as id; nil when it can (root, both capabilities, or id is
// Gatehouse's own user and group with no supplementary groups to set).
func canSwitchTo(id *Identity, euid, egid int, capEff uint64) error {
	if euid == 0 || capEff&(capSetuid|capSetgid) == capSetuid|capSetgid {
		return nil
	}
	if uint32(euid) == id.UID && uint32(egid) == id.GID && len(id.Groups) == 0 {
		return nil // setgroups of an empty list still needs CAP_SETGID; see setIdentity
	}
	return fmt.Errorf("gatehouse runs as uid %d without CAP_SETUID and CAP_SETGID, so it cannot start the app as %s; "+
		"run it as root or grant both capabilities (systemd: AmbientCapabilities=CAP_SETUID CAP_SETGID)", euid, id)
}

// capEff returns this process's effective capability set (0 if unknown).
func capEff() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

// Access wanted by checkAccess, as in access(2).
const (
	accessRead  = 4
	accessWrite = 2
	accessExec  = 1
)

// checkAccess reports, as an error naming the path, its mode and owner,
// whether id may use path with the access bits in want, including search
// (x) permission on every folder above it. It reads permission bits only
// (not ACLs or capabilities); root always passes, as does a nil id.
func checkAccess(id *Identity, path string, want uint32, what string) error {
	if id == nil || id.UID == 0 {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir := "/"
	parts := strings.Split(strings.TrimPrefix(abs, "/"), "/")
	for i, part := range parts {
		last := i == len(parts)-1
		if part == "" {
			continue
		}
		if !last {
			dir = filepath.Join(dir, part)
			if err := checkMode(id, dir, accessExec, "enter the folder"); err != nil {
				return fmt.Errorf("%s %s: %w", what, abs, err)
			}
		}
	}
	verb := map[uint32]string{accessRead | accessExec: "list", accessExec: "run", accessRead: "read",
		accessWrite | accessExec: "write into"}[want]
	if err := checkMode(id, abs, want, verb); err != nil {
		return fmt.Errorf("%s %s: %w", what, abs, err)
	}
	return nil
}

// checkMode checks one file's permission bits for id.
func checkMode(id *Identity, path string, want uint32, verb string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if permits(id, st.Uid, st.Gid, uint32(fi.Mode().Perm()), want) {
		return nil
	}
	return fmt.Errorf("user %s cannot %s %s (mode %s, owner uid %d gid %d)",
		id, verb, path, fs.FileMode(fi.Mode()), st.Uid, st.Gid)
}

// permits applies the Unix permission rule: the owner bits if id owns the
// file, else the group bits if one of its groups owns it, else the others'.
func permits(id *Identity, uid, gid, perm, want uint32) bool {
	var bits uint32
	switch {
	case uid == id.UID:
		bits = perm >> 6
	case gid == id.GID || containsGID(id.Groups, gid):
		bits = perm >> 3
	default:
		bits = perm
	}
	return bits&7&want == want
}

func containsGID(gs []uint32, g uint32) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}
