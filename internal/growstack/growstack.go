// Package growstack grows a new goroutine's stack while it is shallow.
//
// The goroutine that serves an HTTP/2 stream runs the whole proxy path and
// then the HPACK encoder, deeper than a new goroutine's stack. Left alone, the stack
// grows at the deepest point, and the runtime then copies it and reads the
// tables of every frame on it to adjust their pointers (copystack, with a
// pcvalue decode per frame): 7-8% of the CPU of an HTTP/2 request in the
// bench's profiles, 1.3% after Grow. Grow, called first thing, makes
// the runtime do it while the goroutine holds one or two frames, where it
// costs a stack from the runtime's per-P cache and a copy of a few bytes.
// CockroachDB's util/growstack does the same for the same reason.
package growstack

// Size is the stack a goroutine has after Grow: enough for a request's
// path through the front door, the pipeline, the proxy and the HPACK
// encoder, and a size the runtime keeps in its per-P stack cache
// (16 KiB stacks come from there too, but are given back to the heap
// after every second one, which costs more than the copy it saves).
const Size = 8 << 10

// Grow makes the calling goroutine's stack at least Size bytes.
//
//go:noinline
func Grow() {
	var buf [Size / 2]byte
	sink(buf[:])
}

// sink keeps b on the stack and used, so the compiler cannot shrink
// Grow's frame.
//
//go:noinline
func sink(b []byte) { _ = b[len(b)-1] }
