package frontend

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Bounds of the automatic maxConnections (Limits.MaxConnections = 0).
const (
	// perConnBudget is the memory set aside per client connection when
	// sizing the limit: the net/http path measured ~57 KB of RSS per
	// connection when thousands arrive at once (~30 KB once idle), with the
	// app-side connection and its buffers on top; 256 KiB leaves room for a
	// request in flight on each.
	perConnBudget = 256 << 10
	// memoryShare is the part of the machine's memory client connections
	// may take at that budget.
	memoryShare        = 4
	minAutoConnections = 256
	maxAutoConnections = 50000
)

// effectiveMaxConnections turns the configured maxConnections into the
// limit applied: -1 (none) is 0 for the counter, a positive value is kept,
// and 0 (automatic) is autoMaxConnections().
func effectiveMaxConnections(configured int) int {
	switch {
	case configured < 0:
		return 0
	case configured > 0:
		return configured
	}
	return autoMaxConnections(totalMemory(), openFileLimit())
}

// autoMaxConnections is the default maxConnections for a machine with mem
// bytes of memory and a per-process limit of nofile open files: a quarter
// of the memory at perConnBudget per connection, at most half the file
// descriptors (each client connection may hold one to the app too, less 64
// for listeners, logs and watchers), within [minAutoConnections,
// maxAutoConnections]. Unknown values (0) do not limit.
func autoMaxConnections(mem uint64, nofile uint64) int {
	n := uint64(maxAutoConnections)
	if mem > 0 {
		n = min(n, mem/memoryShare/perConnBudget)
	}
	if nofile > 64 {
		n = min(n, (nofile-64)/2)
	}
	return int(max(n, minAutoConnections))
}

// totalMemory returns the machine's RAM in bytes, 0 if unknown.
func totalMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// openFileLimit returns the soft RLIMIT_NOFILE (Go raises it to the hard
// limit at start), 0 if unknown.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
