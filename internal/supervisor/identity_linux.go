//go:build linux

package supervisor

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
	cmd.SysProcAttr.Credential = &syscall.Credential{
		Uid:    id.UID,
		Gid:    id.GID,
		Groups: append([]uint32{}, id.Groups...), // non-nil: setgroups is always called
	}
	return nil
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
