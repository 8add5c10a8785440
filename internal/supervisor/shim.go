package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// shimEnv marks a child started through the re-exec shim (socket
// activation, umask, rlimits).
const shimEnv = "GATEHOUSE_LISTEN_SHIM"

// ShimMain must be the first thing the gatehouse binary's main does. In a
// normal run it returns false at once. In a child started through the shim
// (GATEHOUSE_LISTEN_SHIM=1), it applies the umask and rlimits an AppPool
// asks for (see shimsettings_linux.go), sets LISTEN_PID to its own pid when
// a socket is passed (the real program keeps it across exec), removes the
// markers and replaces itself with the program named in os.Args[1] and its
// arguments; it only returns, true, if that or the settings failed, after
// printing why to stderr, and main must then exit with status 127 without
// doing anything else.
//
// The shim exists because LISTEN_PID must name the app's own pid, which is
// not known before the fork, and os/exec can neither change the environment
// nor set the umask or rlimits between fork and exec.
func ShimMain() bool {
	if os.Getenv(shimEnv) != "1" {
		return false
	}
	os.Unsetenv(shimEnv)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "gatehouse shim: no program to run")
		return true
	}
	if err := applyShimSettings(); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse shim:", err)
		return true
	}
	if _, ok := os.LookupEnv("LISTEN_FDS"); ok {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "gatehouse shim: exec %s: %v\n", os.Args[1], err)
	return true
}

// shellShim is the socket-activation shim as a /bin/sh script: $$ is the
// shell's pid, which exec hands on to the program, and "$0" "$@" pass the
// program and its arguments through verbatim (the shell never parses them).
const shellShim = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`

// shimShell returns "/bin/sh" if it exists, else "".
func shimShell() string {
	if _, err := os.Stat("/bin/sh"); err == nil {
		return "/bin/sh"
	}
	return ""
}

// shimCommand returns the command that runs prog with args and LISTEN_PID
// set to the program's own pid, and what it needs added to the environment.
// With a shell it runs shellShim (an exec of a small C program, ~1 ms).
// With shell "" it runs this binary, whose ShimMain does the same after a Go
// runtime start: ~5 ms more on a busy machine, which was most of the
// socket-activated start's overhead in bench/.
func shimCommand(shell, prog string, args []string) (*exec.Cmd, []string, error) {
	if shell != "" {
		return exec.Command(shell, append([]string{"-c", shellShim, prog}, args...)...), nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	return exec.Command(exe, append([]string{prog}, args...)...), []string{shimEnv + "=1"}, nil
}
