package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// startupSettled is how long after the listeners are bound serve unmaps
// the code only start-up ran (dropStartupText).
const startupSettled = time.Second

// dropStartupText takes the pages of the binary's code and read-only data
// out of this process's page tables. Start-up touched many that serving
// never touches again: package init, the configuration's parsers, opening
// the apps; the kernel maps the neighbours of every page touched too. The
// pages stay in the page cache, so what serving uses comes back on its
// next touch (a minor fault, no disk read), and the resident set becomes
// what Gatehouse uses while serving. Only read-only private mappings of a
// non-PIE executable are dropped: nothing ever wrote to their pages, so
// dropping them loses nothing (a PIE binary's RELRO segment holds pages
// the dynamic loader wrote; it is left alone, and with it the whole PIE
// binary). It returns how many bytes of mappings it dropped.
func dropStartupText() (int, error) {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("drop start-up text: %w", err)
	}
	defer exe.Close()
	// e_type, at offset 16 of the ELF header: 2 is ET_EXEC, 3 ET_DYN (PIE).
	var typ [2]byte
	if _, err := exe.ReadAt(typ[:], 16); err != nil {
		return 0, fmt.Errorf("drop start-up text: read ELF header: %w", err)
	}
	if binary.LittleEndian.Uint16(typ[:]) != 2 {
		return 0, nil
	}
	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("drop start-up text: %w", err)
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("drop start-up text: %w", err)
	}
	defer maps.Close()
	return dropMappings(maps, path)
}

// dropMappings drops the r-xp and r--p mappings of file path listed in
// maps (the format of /proc/PID/maps).
func dropMappings(maps io.Reader, path string) (int, error) {
	dropped := 0
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// 00400000-00cf3000 r-xp 00000000 fe:00 10018986   /usr/bin/gatehouse
		f := bytes.Fields(sc.Bytes())
		if len(f) != 6 || string(f[5]) != path || (string(f[1]) != "r-xp" && string(f[1]) != "r--p") {
			continue
		}
		lo, hi, _ := bytes.Cut(f[0], []byte("-"))
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The raw call: unix.Madvise wants a []byte, and this is no Go
		// memory.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno != 0 {
			return dropped, fmt.Errorf("drop start-up text: madvise %s: %w", f[0], errno)
		}
		dropped += int(end - start)
	}
	if err := sc.Err(); err != nil {
		return dropped, fmt.Errorf("drop start-up text: %w", err)
	}
	return dropped, nil
}
