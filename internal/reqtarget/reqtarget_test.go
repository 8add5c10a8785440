package reqtarget

import "testing"

func TestEscape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"/", "/", true},
		{"/a/b?c=d&e", "/a/b?c=d&e", true},
		// Escapes already there are left alone; '%' is not encoded again.
		{"/%2e%2E/%zz", "/%2e%2E/%zz", true},
		{"/caf\xc3\xa9", "/caf%C3%A9", true},
		{"/a#frag", "/a%23frag", true},
		{"q=\xff\x80", "q=%FF%80", true},
		{"/~!$&'()*+,;=:@[]", "/~!$&'()*+,;=:@[]", true},
		// Bytes of the invalid range wherever they stand, also after one
		// that needs encoding.
		{"/a b", "", false},
		{" ", "", false},
		{"/a\x00", "", false},
		{"/\t", "", false},
		{"/\r\n", "", false},
		{"/\x1f", "", false},
		{"/\x7f", "", false},
		{"/\xc3\xa9 ", "", false},
		{"/#\x01", "", false},
	}
	for _, tt := range tests {
		got, ok := Escape(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Escape(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestEscapeEveryByte checks each byte alone: encoded (%XX, upper-case
// hexadecimal) beyond ASCII and for '#', refused at or below the space and
// for DEL, and kept as it is otherwise.
func TestEscapeEveryByte(t *testing.T) {
	t.Parallel()
	const hex = "0123456789ABCDEF"
	for c := 0; c < 256; c++ {
		s := "/" + string([]byte{byte(c)})
		got, ok := Escape(s)
		switch {
		case c <= ' ' || c == 0x7f:
			if ok || got != "" {
				t.Errorf("Escape(%q) = %q, %v; want it refused", s, got, ok)
			}
		case c >= 0x80 || c == '#':
			if want := "/%" + string([]byte{hex[c>>4], hex[c&15]}); !ok || got != want {
				t.Errorf("Escape(%q) = %q, %v; want %q", s, got, ok, want)
			}
		default:
			if !ok || got != s {
				t.Errorf("Escape(%q) = %q, %v; want it as it is", s, got, ok)
			}
		}
	}
}
