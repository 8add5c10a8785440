//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// groupPrivateMemory returns the private memory of process group pgid: the
// sum over its members of resident minus shared pages (/proc/PID/statm),
// which is the anonymous resident memory, the Linux counterpart of IIS's
// private bytes. It fails if the group leader is gone.
func groupPrivateMemory(pgid int) (int64, error) {
	total, err := privateMemory(pgid)
	if err != nil {
		return 0, err
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return total, nil
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pgid || !samePgid(pid, pgid) {
			continue
		}
		if n, err := privateMemory(pid); err == nil {
			total += n
		}
	}
	return total, nil
}

// privateMemory returns one process's resident minus shared bytes.
func privateMemory(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	return parseStatm(string(b), int64(os.Getpagesize()))
}

// parseStatm reads "size resident shared text lib data dt" (pages) and
// returns (resident-shared)*pageSize.
func parseStatm(s string, pageSize int64) (int64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, fmt.Errorf("statm %q: too few fields", s)
	}
	res, err1 := strconv.ParseInt(f[1], 10, 64)
	shared, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("statm %q: not numbers", s)
	}
	return max(res-shared, 0) * pageSize, nil
}
