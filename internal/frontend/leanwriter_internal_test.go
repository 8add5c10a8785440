package frontend

import (
	"net/http"
	"strconv"
	"testing"
)

// TestParseLength compares parseLength with the rule it stands for,
// strconv.ParseInt(v, 10, 64) and not negative, on plain digits of every
// length up to past an int64's, and on the values its fast path must hand
// over: signs, spaces, underscores, other bytes, overflow.
func TestParseLength(t *testing.T) {
	vals := []string{"", "0", "00", "7", "13", "+13", "-13", "-0", " 13", "13 ", "1_3", "1a", "0x1f",
		"９", "/", ":", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"99999999999999999999", "000000000000000000000000012"}
	digits := ""
	for i := range 21 {
		digits += string(rune('1' + i%9))
		vals = append(vals, digits, "0"+digits)
	}
	for _, v := range vals {
		n, ok := parseLength(v)
		want, err := strconv.ParseInt(v, 10, 64)
		wantOK := err == nil && want >= 0
		if ok != wantOK || ok && n != want {
			t.Errorf("parseLength(%q) = %d, %v; want %d, %v", v, n, ok, want, wantOK)
		}
	}
}

// TestAppendStatus compares the status line appendStatus assembles, three
// digits by hand for codes of three digits, with the code formatted by
// strconv and the standard or set reason phrase, for every code from -1 to
// 1,000 and a few beyond.
func TestAppendStatus(t *testing.T) {
	codes := []int{-1000, 1000, 1234, 99999}
	for c := -1; c <= 1000; c++ {
		codes = append(codes, c)
	}
	for _, code := range codes {
		for _, text := range []string{"", "Custom Reason"} {
			w := &leanWriter{status: code, statusText: text}
			w.appendStatus(code)
			reason := text
			if reason == "" {
				reason = http.StatusText(code)
			}
			want := "HTTP/1.1 " + strconv.Itoa(code) + " " + reason + "\r\n"
			if got := string(w.hb); got != want {
				t.Fatalf("appendStatus(%d) = %q, want %q", code, got, want)
			}
		}
	}
}
