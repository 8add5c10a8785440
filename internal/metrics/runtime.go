package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// goFamilies returns the Go runtime's figures under the names
// Prometheus' Go collector gives them, read at scrape time.
func goFamilies() []family {
	var fams []family
	gauge := func(name, help, typ string, v float64) {
		g := newGaugeFamily(name, help, typ)
		g.add(v)
		fams = append(fams, g.family)
	}
	gauge("go_goroutines", "Number of goroutines that currently exist.", "gauge", float64(runtime.NumGoroutine()))
	info := newGaugeFamily("go_info", "Information about the Go environment.", "gauge")
	info.add(1, "version", runtime.Version())
	fams = append(fams, info.family)
	gauge("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously.", "gauge", float64(runtime.GOMAXPROCS(0)))

	rm := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(rm)
	if rm[0].Value.Kind() == metrics.KindUint64 {
		gauge("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100.", "gauge", float64(rm[0].Value.Uint64()))
	}
	if rm[1].Value.Kind() == metrics.KindUint64 {
		gauge("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64.", "gauge", float64(rm[1].Value.Uint64()))
	}

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	pauses := family{name: "go_gc_duration_seconds", help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", typ: "summary"}
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		pauses.samples = append(pauses.samples, sample{labels: []label{{"quantile", q}}, value: gc.PauseQuantiles[i].Seconds()})
	}
	pauses.samples = append(pauses.samples, sample{suffix: "_sum", value: gc.PauseTotal.Seconds()},
		sample{suffix: "_count", value: float64(gc.NumGC)})
	fams = append(fams, pauses)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, m := range []struct {
		name, help, typ string
		v               uint64
	}{
		{"alloc_bytes", "Number of bytes allocated in heap and currently in use.", "gauge", ms.Alloc},
		{"alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", "counter", ms.TotalAlloc},
		{"sys_bytes", "Number of bytes obtained from system.", "gauge", ms.Sys},
		{"mallocs_total", "Total number of heap objects allocated, both live and gc-ed.", "counter", ms.Mallocs},
		{"frees_total", "Total number of heap objects frees.", "counter", ms.Frees},
		{"heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", "gauge", ms.HeapAlloc},
		{"heap_sys_bytes", "Number of heap bytes obtained from system.", "gauge", ms.HeapSys},
		{"heap_idle_bytes", "Number of heap bytes waiting to be used.", "gauge", ms.HeapIdle},
		{"heap_inuse_bytes", "Number of heap bytes that are in use.", "gauge", ms.HeapInuse},
		{"heap_released_bytes", "Number of heap bytes released to OS.", "gauge", ms.HeapReleased},
		{"heap_objects", "Number of currently allocated objects.", "gauge", ms.HeapObjects},
		{"stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.", "gauge", ms.StackInuse},
		{"stack_sys_bytes", "Number of bytes obtained from system for stack allocator.", "gauge", ms.StackSys},
		{"mspan_inuse_bytes", "Number of bytes in use by mspan structures.", "gauge", ms.MSpanInuse},
		{"mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system.", "gauge", ms.MSpanSys},
		{"mcache_inuse_bytes", "Number of bytes in use by mcache structures.", "gauge", ms.MCacheInuse},
		{"mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system.", "gauge", ms.MCacheSys},
		{"buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table.", "gauge", ms.BuckHashSys},
		{"gc_sys_bytes", "Number of bytes used for garbage collection system metadata.", "gauge", ms.GCSys},
		{"other_sys_bytes", "Number of bytes used for other system allocations.", "gauge", ms.OtherSys},
		{"next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", "gauge", ms.NextGC},
	} {
		gauge("go_memstats_"+m.name, m.help, m.typ, float64(m.v))
	}
	gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", "gauge", float64(ms.LastGC)/1e9)
	return fams
}

// processFamilies returns this process's figures from /proc under the
// names Prometheus' process collector gives them; a figure that cannot be
// read is left out.
func processFamilies() []family {
	var fams []family
	gauge := func(name, help, typ string, v float64) {
		g := newGaugeFamily(name, help, typ)
		g.add(v)
		fams = append(fams, g.family)
	}
	if st, err := readStat(); err == nil {
		gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", st.cpu)
		gauge("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", st.rss)
		gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", st.vsize)
		gauge("go_threads", "Number of OS threads created.", "gauge", st.threads)
		if boot, err := bootTime(); err == nil {
			gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", boot+st.start)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		// ReadDir itself holds one open descriptor for the directory.
		gauge("process_open_fds", "Number of open file descriptors.", "gauge", float64(len(fds)-1))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		gauge("process_max_fds", "Maximum number of open file descriptors.", "gauge", float64(lim.Cur))
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil {
		gauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", "gauge", float64(lim.Cur))
	}
	return fams
}

// clkTck is the kernel's USER_HZ, the unit of /proc/PID/stat's times: 100
// on every Linux architecture Go supports.
const clkTck = 100

// procStat is what the figures need of /proc/self/stat.
type procStat struct {
	cpu, start float64 // seconds; start since boot
	rss, vsize float64 // bytes
	threads    float64
}

func readStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 22 {
		return procStat{}, syscall.EINVAL
	}
	num := func(i int) float64 { // field i+3 of stat(5)
		n, _ := strconv.ParseUint(f[i], 10, 64)
		return float64(n)
	}
	return procStat{
		cpu:     (num(11) + num(12)) / clkTck, // utime, stime
		threads: num(17),
		start:   num(19) / clkTck,
		vsize:   num(20),
		rss:     num(21) * float64(os.Getpagesize()),
	}, nil
}

// bootTime returns when the system booted, in Unix seconds (btime of
// /proc/stat).
func bootTime() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, syscall.ENOENT
}
