#!/usr/bin/env python3
"""resident.py PID [N]: which parts of a running Go binary are resident.

Reads /proc/PID/maps and /proc/PID/pagemap (root, or the process's owner
with CAP_SYS_ADMIN, sees the present bits) for the mappings of the
executable, then attributes each resident 4 KiB page to the symbols it holds
(`go tool nm -size -sort address`) and so to packages. Prints the resident
KiB by ELF section, of the function metadata table (.gopclntab) by part, and
the N packages (default 40) with the most resident bytes.

The kernel maps the 64 KiB around each page fault of a file mapping
(fault-around), so a package is charged for the neighbours of the code that
ran, not only for that code. Used for the idle RSS notes in bench/NOTES.md.
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = 4096


def resident_pages(pid, exe):
    """The addresses of the resident pages of exe's mappings in pid."""
    pages = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in maps:
            f = line.split()
            if len(f) < 6 or os.path.realpath(f[5]) != exe:
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            pm.seek(lo // PAGE * 8)
            data = pm.read((hi - lo) // PAGE * 8)
            for i in range((hi - lo) // PAGE):
                if struct.unpack_from("<Q", data, i * 8)[0] >> 63:
                    pages.append(lo + i * PAGE)
    return pages


def sections(exe):
    """(start, end, name, file offset) of exe's allocated ELF sections."""
    out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout
    secs = []
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m and int(m.group(2), 16):
            start = int(m.group(2), 16)
            secs.append((start, start + int(m.group(4), 16), m.group(1), int(m.group(3), 16)))
    return secs


def symbols(exe):
    """(address, size, name) of exe's symbols, by address."""
    out = subprocess.run(["go", "tool", "nm", "-size", "-sort", "address", exe],
                         capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split(None, 3)
        if len(f) == 4 and int(f[0], 16) and f[2] != "U":
            syms.append((int(f[0], 16), int(f[1]), f[3]))
    syms.sort()
    return syms


def package(name):
    """The package a symbol belongs to ("net/http" for "type:*net/http.Request")."""
    for p in ("type:.eq.", "type:.hash.", "type:", "go:itab.", "*"):
        if name.startswith(p):
            name = name[len(p):]
    name = name.lstrip("*[]")
    if name.startswith(("map.", "map[", "func(", "struct", "noalg.")):
        return "(composite types)"
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name[:dot] if dot > 0 else name


def pclntab_parts(exe, secs, pages):
    """Resident KiB of each part of .gopclntab (Go 1.20+ header layout)."""
    pcln = [s for s in secs if s[2] == ".gopclntab"]
    if not pcln:
        return []
    start, end, _, off = pcln[0]
    with open(exe, "rb") as f:
        f.seek(off)
        hdr = f.read(72)
    funcname, cu, filetab, pctab, functab = struct.unpack_from("<QQQQQ", hdr, 32)
    bounds = [("names", funcname, cu), ("compilation units", cu, filetab), ("file names", filetab, pctab),
              ("pc-value tables (line, stack, file)", pctab, functab),
              ("function table, _func records, stack maps", functab, end - start)]
    present = set(pages)
    parts = []
    for name, lo, hi in bounds:
        n = sum(1 for p in range((start + lo) // PAGE, (start + hi + PAGE - 1) // PAGE) if p * PAGE in present)
        parts.append((name, (hi - lo) // 1024, n * PAGE // 1024))
    return parts


def main():
    pid = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    exe = os.path.realpath(f"/proc/{pid}/exe")
    pages = resident_pages(pid, exe)
    secs = sections(exe)
    syms = symbols(exe)
    addrs = [s[0] for s in syms]

    def section(a):
        for lo, hi, name, _ in secs:
            if lo <= a < hi:
                return name
        return "(between sections)"

    by_section = collections.Counter()
    by_package = collections.Counter()
    for a in pages:
        sec = section(a)
        by_section[sec] += PAGE
        if sec == ".gopclntab":
            continue
        covered = 0
        i = max(bisect.bisect_right(addrs, a) - 1, 0)
        while i < len(syms) and syms[i][0] < a + PAGE:
            s, size, name = syms[i]
            n = min(s + max(size, 1), a + PAGE) - max(s, a)
            if n > 0:
                by_package[package(name)] += n
                covered += n
            i += 1
        by_package[f"(no symbol, {sec})"] += PAGE - covered

    print(f"{exe}: {len(pages) * PAGE // 1024} KiB resident")
    for name, n in by_section.most_common():
        print(f"  {n // 1024:8} KiB  {name}")
    print(".gopclntab by part (size, resident):")
    for name, size, n in pclntab_parts(exe, secs, pages):
        print(f"  {size:8} KiB  {n:8} KiB  {name}")
    print(f"top {top} packages, text, read-only data and data (without .gopclntab):")
    for name, n in by_package.most_common(top):
        print(f"  {n // 1024:8} KiB  {name}")


if __name__ == "__main__":
    main()
