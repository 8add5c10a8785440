package h1

import "testing"

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
