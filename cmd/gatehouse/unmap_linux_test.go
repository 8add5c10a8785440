package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentKiB returns the Rss of the mapping that starts at addr, from
// /proc/self/smaps.
func residentKiB(t *testing.T, addr uintptr) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("%x-", addr)
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, head) {
			in = true
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no mapping at %x in smaps", addr)
	return 0
}

// TestDropMappings maps a file read-only, reads it whole, and checks that
// dropMappings takes its pages out of the resident set while its contents
// stay readable.
func TestDropMappings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "text")
	want := bytes.Repeat([]byte("gatehouse"), 1<<17) // ~1.1 MiB
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(want), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if !bytes.Equal(m, want) {
		t.Fatal("mapping differs from the file")
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	if kb := residentKiB(t, addr); kb < 1000 {
		t.Fatalf("after reading it all, %d KiB of the mapping are resident", kb)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	n, err := dropMappings(bytes.NewReader(maps), path)
	if err != nil {
		t.Fatal(err)
	}
	if n < len(want) {
		t.Errorf("dropped %d bytes, want at least %d", n, len(want))
	}
	if kb := residentKiB(t, addr); kb != 0 {
		t.Errorf("after the drop, %d KiB of the mapping are resident", kb)
	}
	if !bytes.Equal(m, want) {
		t.Error("after the drop, the mapping reads differently")
	}
}
