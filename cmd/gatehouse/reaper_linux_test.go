//go:build linux

package main

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// anyExited sees a child that has exited and not been waited for, and
// leaves it for its owner to wait for.
func TestAnyExited(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Block until it has exited, without reaping it.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("waitid: %v", err)
	}
	if !anyExited() {
		t.Error("anyExited = false with an exited child not yet waited for")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the owner's Wait after anyExited: %v (was the child reaped?)", err)
	}
}
