package main

import (
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture.
const clockTicks = 100

// procUsage returns the CPU time (user and system, with reaped children)
// and resident memory of pid from /proc; zeros when it cannot be read.
func procUsage(pid int) (cpuSeconds float64, rssBytes int64) {
	if pid <= 0 {
		return 0, 0
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	if b, err := os.ReadFile(dir + "stat"); err == nil {
		// The command name (field 2) may hold spaces: fields count from
		// after its closing parenthesis, which is field 3 (state).
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			var ticks int64
			for _, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime (fields 14-17)
				if k < len(f) {
					n, _ := strconv.ParseInt(f[k], 10, 64)
					ticks += n
				}
			}
			cpuSeconds = float64(ticks) / clockTicks
		}
	}
	if b, err := os.ReadFile(dir + "statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseInt(f[1], 10, 64)
			rssBytes = pages * int64(os.Getpagesize())
		}
	}
	return cpuSeconds, rssBytes
}
