package h1

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// TestValidFieldValue compares ValidFieldValue, which reads eight bytes at
// a time, with the rule byte by byte: every byte value at every position of
// values of 0 to 20 bytes, and every pair of telling bytes (controls, tab,
// DEL, obs-text next to them) at every two positions of a 17-byte value.
func TestValidFieldValue(t *testing.T) {
	valid := func(v []byte) bool {
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		return true
	}
	for n := 0; n <= 20; n++ {
		v := make([]byte, n)
		for i := range v {
			v[i] = 'a'
		}
		if !ValidFieldValue(string(v)) {
			t.Fatalf("ValidFieldValue(%q) = false", v)
		}
		for i := 0; i < n; i++ {
			for c := 0; c < 256; c++ {
				v[i] = byte(c)
				if got, want := ValidFieldValue(string(v)), valid(v); got != want {
					t.Fatalf("ValidFieldValue(%q) = %v, want %v", v, got, want)
				}
			}
			v[i] = 'a'
		}
	}
	telling := []byte{0x00, 0x01, '\t', '\n', '\r', 0x1f, ' ', 0x7e, 0x7f, 0x80, 0xfe, 0xff, 'a'}
	v := make([]byte, 17)
	for i := 0; i < len(v); i++ {
		for j := i + 1; j < len(v); j++ {
			for _, a := range telling {
				for _, b := range telling {
					for k := range v {
						v[k] = 'x'
					}
					v[i], v[j] = a, b
					if got, want := ValidFieldValue(string(v)), valid(v); got != want {
						t.Fatalf("ValidFieldValue(%q) = %v, want %v", v, got, want)
					}
				}
			}
		}
	}
}

// TestParseFieldLines compares parseField, which checks the name as it
// looks for the colon (TokenPrefix), with the rule in two steps (the
// first colon, then the name before it a token): the same field or the
// same fault for every line of up to 5 bytes of a, -, colon, space, tab,
// CR, NUL and obs-text.
func TestParseFieldLines(t *testing.T) {
	twoSteps := func(line string) (name, value string, err error) {
		if line[0] == ' ' || line[0] == '\t' {
			return "", "", bad("folded header line")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return "", "", bad("header line without colon")
		}
		if name = line[:colon]; !IsToken(name) {
			return "", "", bad("invalid header name")
		}
		if value = TrimOWS(line[colon+1:]); !ValidFieldValue(value) {
			return "", "", bad("control character in header value")
		}
		return name, value, nil
	}
	alphabet := "a-: \t\r\x00\x80"
	var walk func(line string)
	walk = func(line string) {
		if line != "" {
			name, value, err := parseField(line)
			wname, wvalue, werr := twoSteps(line)
			if name != wname || value != wvalue || fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Fatalf("parseField(%q) = %q, %q, %v; want %q, %q, %v", line, name, value, err, wname, wvalue, werr)
			}
		}
		if len(line) == 5 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			walk(line + alphabet[i:i+1])
		}
	}
	walk("")
}

// TestFoldIs compares FoldIs, which compares words, with strings.EqualFold
// for strings of lower's length: every byte value at every position of s
// against lowers of 1 to 20 bytes (letters, digits, '-', and the bytes
// next to the capitals and small letters), every string of up to 3 bytes
// over telling bytes against every lower of its length over them, and the
// Kelvin sign and the long s, which strings.EqualFold folds to k and s.
func TestFoldIs(t *testing.T) {
	want := func(s, lower string) bool {
		return len(s) == len(lower) && strings.EqualFold(s, lower)
	}
	check := func(s, lower string) {
		t.Helper()
		if got := FoldIs(s, lower); got != want(s, lower) {
			t.Fatalf("FoldIs(%q, %q) = %v, strings.EqualFold says %v", s, lower, got, !got)
		}
	}
	lowers := "abkszy09-_@[`{~"
	for n := 1; n <= 20; n++ {
		lb := make([]byte, n)
		for i := range lb {
			lb[i] = lowers[(i*7+n)%len(lowers)]
		}
		lower := string(lb)
		check(lower, lower)
		check(strings.ToUpper(lower), lower)
		for p := 0; p < n; p++ {
			for c := 0; c < 256; c++ {
				sb := []byte(strings.ToUpper(lower))
				sb[p] = byte(c)
				check(string(sb), lower)
				sb = []byte(lower)
				sb[p] = byte(c)
				check(string(sb), lower)
			}
		}
	}
	telling := "aAkKzZ@[`{-\r\x80\xff\xe2"
	small := "akz@[`{-"
	var all func(prefix string, n int, f func(string))
	all = func(prefix string, n int, f func(string)) {
		if n == 0 {
			f(prefix)
			return
		}
		for i := 0; i < len(telling); i++ {
			all(prefix+telling[i:i+1], n-1, f)
		}
	}
	for n := 0; n <= 3; n++ {
		all("", n, func(s string) {
			var lows func(prefix string, k int)
			lows = func(prefix string, k int) {
				if k == 0 {
					check(s, prefix)
					return
				}
				for i := 0; i < len(small); i++ {
					lows(prefix+small[i:i+1], k-1)
				}
			}
			lows("", n)
		})
	}
	for _, c := range []struct{ s, lower string }{
		{"\u212a", "k"}, {"\u212aeep-alive", "keep-alive"}, {"clo\u017fe", "close"},
		{"Transfer-Encoding", "transfer-encoding"}, {"TRANSFER-ENCODING", "transfer-encoding"},
		{"transfer-encodinG", "transfer-encoding"}, {"transfer_encoding", "transfer-encoding"},
		{"Content-Length", "content-length"}, {"Content-Lengt", "content-length"},
	} {
		check(c.s, c.lower)
	}
}

// TestConnectionTokens compares connectionTokens with HasToken, its three
// calls, on lists of the three tokens, in any case, with a Kelvin sign or
// a long s, with whitespace and empty elements, and on every string of up
// to four bytes over telling bytes.
func TestConnectionTokens(t *testing.T) {
	check := func(v string) {
		t.Helper()
		u, k, c := connectionTokens(v)
		if u != HasToken(v, "upgrade") || k != HasToken(v, "keep-alive") || c != HasToken(v, "close") {
			t.Fatalf("connectionTokens(%q) = %v, %v, %v; HasToken says %v, %v, %v", v, u, k, c,
				HasToken(v, "upgrade"), HasToken(v, "keep-alive"), HasToken(v, "close"))
		}
	}
	for _, v := range []string{
		"", "close", "Close", "CLOSE", " close ", "\tclose", "keep-alive", "Keep-Alive", "upgrade", "Upgrade",
		"keep-alive, Upgrade", "close,upgrade", ",,close,,", "clos", "closed", "x-close", "clo\u017fe",
		"\u212aeep-alive", "upgrade, \u212aeep-alive", "keep-alive , close", "keepalive", "up grade", "close\t,",
		"te, close, keep-alive, upgrade", "u", "upgradeupgrade", "CLOSE ,KEEP-ALIVE,UPGRADE",
	} {
		check(v)
	}
	telling := "cClL,\t k"
	var all func(prefix string, n int)
	all = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for i := 0; i < len(telling); i++ {
			all(prefix+telling[i:i+1], n-1)
		}
	}
	all("", 4)
}

// TestFoldToASCII checks the premise FoldIs's comment and its callers rely
// on: the only non-ASCII runes strings.EqualFold takes for an ASCII letter
// are U+017F (the long s, for s) and U+212A (the Kelvin sign, for k), so a
// string equal ignoring case to an ASCII one without k and s is as long.
func TestFoldToASCII(t *testing.T) {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < 0x80 && !(r == 0x17f && (f == 's' || f == 'S')) && !(r == 0x212a && (f == 'k' || f == 'K')) {
				t.Errorf("%U folds to %q", r, f)
			}
		}
	}
}

// TestEqualFoldASCII: equal ignoring ASCII case, as strings.EqualFold is for
// ASCII strings, and never for a non-ASCII rune that strings.EqualFold
// folds to an ASCII letter.
func TestEqualFoldASCII(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s, t string
		want bool
	}{
		{"chunked", "chunked", true}, {"Chunked", "chunked", true}, {"CHUNKED", "chunked", true},
		{"chun\u212aed", "chunked", false}, {"clo\u017fe", "close", false}, {"\u212aeep-alive", "keep-alive", false},
		{"chunke", "chunked", false}, {"chunked ", "chunked", false}, {"", "", true}, {"@", "`", false}, {"[", "{", false},
	} {
		if got := EqualFoldASCII(c.s, c.t); got != c.want {
			t.Errorf("EqualFoldASCII(%q, %q) = %v, want %v", c.s, c.t, got, c.want)
		}
	}
	for a := range 128 {
		for b := range 128 {
			s, u := string(rune(a)), string(rune(b))
			if got, want := EqualFoldASCII(s, u), strings.EqualFold(s, u); got != want {
				t.Fatalf("EqualFoldASCII(%q, %q) = %v, strings.EqualFold says %v", s, u, got, want)
			}
		}
	}
	if HasToken("gzip, clo\u017fe", "close") || !HasToken("gzip, CLOSE", "close") {
		t.Error("HasToken folds other than ASCII case")
	}
}
