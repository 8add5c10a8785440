//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// startReaper makes Gatehouse a child subreaper (prctl
// PR_SET_CHILD_SUBREAPER): processes orphaned below it — an app's
// daemonized grandchild — are re-parented to Gatehouse instead of init,
// which is also what happens to every orphan when Gatehouse is PID 1 in a
// container. It then reaps those orphans as they exit (on SIGCHLD), so no
// zombie accumulates. It never reaps Gatehouse's own children (the apps
// and the keeper, each the leader of its own process group in Gatehouse's
// session): their owners wait for them. The goroutine ends with ctx.
func startReaper(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("cannot become a child subreaper; orphaned app processes go to init", "err", err)
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	wg.Go(func() {
		defer signal.Stop(sigs)
		sid, _ := unix.Getsid(0)
		for {
			reapOrphans(sid, log)
			select {
			case <-ctx.Done():
				return
			case <-sigs:
			}
		}
	})
}

// reapOrphans reaps every exited child that Gatehouse did not start itself.
func reapOrphans(sid int, log *slog.Logger) {
	if !anyExited() {
		return // nothing to reap: no need to read a /proc file per thread
	}
	for _, pid := range children() {
		st, ok := readStat(pid)
		if !ok || st.state != 'Z' || (st.pgrp == pid && st.session == sid) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			log.Debug("reaped an orphaned process", "pid", pid, "exit_code", ws.ExitStatus())
		}
	}
}

// anyExited reports whether some child of Gatehouse has exited and not
// been waited for yet. It reaps nothing (WNOWAIT): one system call, where
// the scan reads /proc/self/task/*/children, which on the first scan at
// start-up competed with the first request.
func anyExited() bool {
	var info unix.Siginfo // zeroed: stays so when no child is waitable
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

// children lists Gatehouse's child processes (of every thread).
func children() []int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

type procStat struct {
	state         byte
	pgrp, session int
}

// readStat reads state, process group and session from /proc/PID/stat.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	// After "(comm) ": state ppid pgrp session …
	f := strings.Fields(s[i+1:])
	if len(f) < 4 {
		return procStat{}, false
	}
	pgrp, err1 := strconv.Atoi(f[2])
	session, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], pgrp: pgrp, session: session}, true
}
