package main

import "runtime/debug"

// gcPercent is the garbage collector's target (GOGC) of a serving
// Gatehouse whose environment does not tune the collector. Its live heap
// is small (1–3 MB under load), so at the runtime's default of 100 the
// heap goal is the runtime's 4 MB floor and the collector runs often
// under load (HTTPS + HTTP/2: 1.4 cycles per 1000 requests, 5.8% of the
// CPU). 200 doubles that floor: 0.6 cycles per 1000 requests, 2.3%. It
// costs heap kept once traffic has been through (3.5–5 MiB more RSS after
// the bench's loads); idle RSS and the memory of an idle connection do not
// move. See bench/NOTES.md, "The Go runtime's share: kernel, GC, sysmon".
const gcPercent = 200

// setGCDefault sets the collector's target to gcPercent unless the
// environment tunes the collector itself: GOGC and GOMEMLIMIT, as getenv
// reads them, win. It reports whether it set it.
func setGCDefault(getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(gcPercent)
	return true
}
