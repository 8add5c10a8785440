//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// isGatehouse checks that pid runs a gatehouse binary: its executable
// (/proc/PID/exe, readable for our own processes) is this very binary or
// is named gatehouse*, or else its command line (/proc/PID/cmdline,
// readable for all) starts with a program named gatehouse*.
func isGatehouse(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no process %d is running", pid)
	}
	named := func(p string) bool {
		return strings.HasPrefix(filepath.Base(strings.TrimSuffix(p, " (deleted)")), "gatehouse")
	}
	if exe, err := os.Readlink(dir + "/exe"); err == nil {
		if named(exe) {
			return nil
		}
		if self, err := os.Executable(); err == nil {
			a, errA := os.Stat(self)
			b, errB := os.Stat(dir + "/exe")
			if errA == nil && errB == nil && os.SameFile(a, b) {
				return nil
			}
		}
	}
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil {
		return fmt.Errorf("cannot tell what process %d runs: %w", pid, err)
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	if named(string(argv0)) {
		return nil
	}
	return fmt.Errorf("process %d is not a gatehouse (it runs %q)", pid, string(argv0))
}
