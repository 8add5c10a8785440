package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// shimEnv marks a child started through the socket-activation shim.
const shimEnv = "GATEHOUSE_LISTEN_SHIM"

// ShimMain must be the first thing the gatehouse binary's main does. In a
// normal run it returns false at once. In a child started for socket
// activation (GATEHOUSE_LISTEN_SHIM=1), it sets LISTEN_PID to its own pid
// (which the real program keeps across exec), removes the marker and
// replaces itself with the program named in os.Args[1] and its arguments; it
// only returns, true, if that exec failed, after printing why to stderr, and
// main must then exit with status 127 without doing anything else.
//
// The shim exists because LISTEN_PID must name the app's own pid, which is
// not known before the fork, and os/exec cannot change the environment
// between fork and exec.
func ShimMain() bool {
	if os.Getenv(shimEnv) != "1" {
		return false
	}
	os.Unsetenv(shimEnv)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "gatehouse socket shim: no program to run")
		return true
	}
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "gatehouse socket shim: exec %s: %v\n", os.Args[1], err)
	return true
}
