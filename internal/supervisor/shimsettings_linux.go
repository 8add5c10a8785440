//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Settings the re-exec shim applies to itself before it execs the app,
// because os/exec cannot set them between fork and exec. Both are removed
// from the environment the app sees.
const (
	// shimUmaskEnv holds the umask in octal ("027").
	shimUmaskEnv = "GATEHOUSE_SHIM_UMASK"
	// shimRlimitsEnv holds "as=BYTES,nproc=N": RLIMIT_AS and RLIMIT_NPROC.
	shimRlimitsEnv = "GATEHOUSE_SHIM_RLIMITS"
)

// settingsShellShim applies the cgroup v1 join and the umask as
// applyShimSettings does, in /bin/sh, for a start that needs no rlimits
// (the shell's ulimit differs between shells): $$ is the shell's pid,
// which exec hands on to the program, and "$0" "$@" pass the program and
// its arguments through verbatim. A failure exits 127, as ShimMain.
const settingsShellShim = `set -f
if [ -n "${` + shimCgroupsEnv + `-}" ]; then
  IFS=:
  for f in $` + shimCgroupsEnv + `; do
    echo $$ >"$f" || { echo "gatehouse shim: join cgroup $f failed" >&2; exit 127; }
  done
  unset IFS
fi
if [ -n "${` + shimUmaskEnv + `-}" ]; then
  umask "$` + shimUmaskEnv + `" || { echo "gatehouse shim: umask $` + shimUmaskEnv + ` failed" >&2; exit 127; }
fi
unset ` + shimCgroupsEnv + ` ` + shimUmaskEnv + `
exec "$0" "$@"`

// shimRlimits maps the names in shimRlimitsEnv to resources.
var shimRlimits = map[string]int{"as": unix.RLIMIT_AS, "nproc": unix.RLIMIT_NPROC}

// applyShimSettings applies and removes the settings above.
func applyShimSettings() error {
	if v, ok := os.LookupEnv(shimCgroupsEnv); ok {
		os.Unsetenv(shimCgroupsEnv)
		if err := joinShimCgroups(v); err != nil {
			return err
		}
	}
	if v, ok := os.LookupEnv(shimUmaskEnv); ok {
		os.Unsetenv(shimUmaskEnv)
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return fmt.Errorf("umask %q: %w", v, err)
		}
		unix.Umask(int(m))
	}
	if v, ok := os.LookupEnv(shimRlimitsEnv); ok {
		os.Unsetenv(shimRlimitsEnv)
		lims, err := parseShimRlimits(v)
		if err != nil {
			return err
		}
		for res, n := range lims {
			lim := unix.Rlimit{Cur: n, Max: n}
			if err := unix.Setrlimit(res, &lim); err != nil {
				return fmt.Errorf("setrlimit %s: %w", v, err)
			}
		}
	}
	return nil
}

// parseShimRlimits reads "as=BYTES,nproc=N".
func parseShimRlimits(v string) (map[int]uint64, error) {
	out := map[int]uint64{}
	for kv := range strings.SplitSeq(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		res, ok := shimRlimits[k]
		n, err := strconv.ParseUint(val, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("rlimit %q: want as=BYTES or nproc=N", kv)
		}
		out[res] = n
	}
	return out, nil
}

// fallbackRlimits returns shimRlimitsEnv's value for lim without cgroups:
// Memory as RLIMIT_AS, and Processes as RLIMIT_NPROC only for an identity
// other than root (RLIMIT_NPROC counts every process of the user, and root
// is not held to it). "" when none applies.
func fallbackRlimits(lim Limits, id *Identity) string {
	var parts []string
	if lim.Memory > 0 {
		parts = append(parts, "as="+strconv.FormatInt(lim.Memory, 10))
	}
	if lim.Processes > 0 && id != nil && id.UID != 0 {
		parts = append(parts, "nproc="+strconv.Itoa(lim.Processes))
	}
	return strings.Join(parts, ",")
}
