//go:build cpuprofile

package main

// A profiling build (go build -tags cpuprofile) that records a CPU
// profile of the whole process, for `go tool pprof`: where perf(1) cannot
// follow a stack across the runtime's stack switch (morestack), pprof's
// unwinder can. Released binaries do not contain this file.
//
//	GATEHOUSE_CPUPROFILE=/tmp/cpu.pprof GATEHOUSE_CPUPROFILE_SECONDS=10 \
//	  ./gatehouse serve …     # the profile is complete as /tmp/cpu.pprof.done

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

func init() {
	path := os.Getenv("GATEHOUSE_CPUPROFILE")
	if path == "" {
		return
	}
	// Not for the processes this one starts (the keeper, the shim).
	_ = os.Unsetenv("GATEHOUSE_CPUPROFILE")
	secs, err := strconv.Atoi(os.Getenv("GATEHOUSE_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		fmt.Fprintln(os.Stderr, "gatehouse: GATEHOUSE_CPUPROFILE_SECONDS must be a positive number of seconds")
		os.Exit(exitUsage)
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse: cpu profile:", err)
		os.Exit(exitFailed)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse: cpu profile:", err)
		os.Exit(exitFailed)
	}
	// Ends after the given time; the file is renamed once complete.
	go func() {
		time.Sleep(time.Duration(secs) * time.Second)
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "gatehouse: cpu profile:", err)
		}
		if err := os.Rename(path, path+".done"); err != nil {
			fmt.Fprintln(os.Stderr, "gatehouse: cpu profile:", err)
		}
	}()
}
