package h1

import (
	"fmt"
	"strings"
	"testing"
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
