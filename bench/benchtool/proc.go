package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// rssKiB returns the summed VmRSS of pids, in KiB.
func rssKiB(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, fmt.Errorf("read rss: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					f.Close()
					return 0, fmt.Errorf("parse VmRSS of %d: %w", pid, err)
				}
				total += n
			}
		}
		f.Close()
	}
	return total, nil
}

// clkTck is the kernel's USER_HZ: 100 on every Linux architecture Go
// supports (run.sh checks getconf CLK_TCK).
const clkTck = 100

// cpuTime returns the summed user+system CPU time of pids (all threads).
func cpuTime(pids []int) (time.Duration, error) {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("read cpu time: %w", err)
		}
		// The command name (field 2) may hold spaces: count from its ')'.
		i := bytes.LastIndexByte(b, ')')
		fs := strings.Fields(string(b[i+1:]))
		if len(fs) < 13 {
			return 0, fmt.Errorf("short /proc/%d/stat", pid)
		}
		for _, f := range fs[11:13] { // utime, stime: fields 14 and 15
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clkTck, nil
}
