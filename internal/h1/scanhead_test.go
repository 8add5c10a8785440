package h1

import (
	"errors"
	"testing"
)

// scanHeadBytewise is ScanHead as it was written first, byte by byte: the
// rule TestScanHeadLines holds ScanHead to.
func scanHeadBytewise(buf []byte, from int) (int, error) {
	start := 0
	for i := from - 1; i >= 0; i-- {
		if buf[i] == '\n' {
			start = i + 1
			break
		}
	}
	for i := max(from-1, start); i < len(buf); i++ {
		switch buf[i] {
		case '\n':
			if i == 0 || buf[i-1] != '\r' {
				return 0, bad("bare LF")
			}
			if i-1 == start {
				if start == 0 {
					return 0, bad("empty line before the request line")
				}
				return i + 1, nil
			}
			start = i + 1
		case '\r':
			if i+1 < len(buf) && buf[i+1] != '\n' {
				return 0, bad("bare CR")
			}
		}
		if i == len(preface)-1 && string(buf[:len(preface)]) == preface {
			return 0, ErrHandOff
		}
	}
	return 0, nil
}

// TestScanHeadLines compares ScanHead, which goes from line end to line
// end, with the byte-by-byte rule: every string of up to 9 bytes of 'a',
// CR and LF, whole and resumed at every point an earlier scan stopped
// without an answer, and the HTTP/2 preface with such bytes around it.
func TestScanHeadLines(t *testing.T) {
	t.Parallel()
	same := func(buf []byte, from int) {
		t.Helper()
		n, err := ScanHead(buf, from)
		wn, werr := scanHeadBytewise(buf, from)
		if n != wn || (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() ||
			errors.Is(err, ErrHandOff) != errors.Is(werr, ErrHandOff) {
			t.Fatalf("ScanHead(%q, %d) = %d, %v; want %d, %v", buf, from, n, err, wn, werr)
		}
	}
	alphabet := []byte{'a', '\r', '\n'}
	var gen func(b []byte)
	gen = func(b []byte) {
		same(b, 0)
		for from := 1; from < len(b); from++ {
			if n, err := ScanHead(b[:from], 0); n == 0 && err == nil {
				same(b, from)
			}
		}
		if len(b) == 9 {
			return
		}
		for _, c := range alphabet {
			gen(append(b, c))
		}
	}
	gen(nil)
	for _, tail := range []string{"", "\r", "\n", "\r\n", "\r\nSM\r\n\r\n", "a"} {
		for _, b := range []string{preface + tail, "PRI * HTTP/2.0\n" + tail, "PRI * HTTP/2.0\rX" + tail, "PRI * HTTP/1.1\r\n" + tail} {
			for from := 0; from <= len(b); from++ {
				if n, err := ScanHead([]byte(b[:from]), 0); from == 0 || n == 0 && err == nil {
					same([]byte(b), from)
				}
			}
		}
	}
}
