package wsframe

import (
	"bytes"
	"strings"
	"testing"
)

// TestRoundTrip: a frame written by Client or Server reads back with its
// opcode, mask bit and payload, at each of the three length forms.
func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		p := bytes.Repeat([]byte{'x'}, n)
		for _, c := range []struct {
			name   string
			frame  []byte
			masked bool
		}{{"client", Client(2, p), true}, {"server", Server(2, p), false}} {
			f, err := Read(bytes.NewReader(c.frame), 1<<20)
			if err != nil {
				t.Fatalf("%s %d: %v", c.name, n, err)
			}
			if f.Head != 0x82 || f.Op() != 2 || f.Masked != c.masked || !bytes.Equal(f.Payload, p) {
				t.Errorf("%s %d: head %x masked %v payload %d bytes", c.name, n, f.Head, f.Masked, len(f.Payload))
			}
		}
	}
	// The length forms are the shortest ones: 2, 4 and 10 bytes of head.
	for n, head := range map[int]int{125: 2, 126: 4, 65536: 10} {
		if got := len(Head(0x81, n)); got != head {
			t.Errorf("head for %d bytes: %d bytes, want %d", n, got, head)
		}
	}
}

// TestRefused: a payload over the bound, an unmasked frame where a
// client's is expected and a masked one where a server's is, are errors.
func TestRefused(t *testing.T) {
	if _, err := Read(bytes.NewReader(Server(1, make([]byte, 200))), 100); err == nil || !strings.Contains(err.Error(), "over 100") {
		t.Errorf("frame over the bound: %v", err)
	}
	if _, err := ReadClient(bytes.NewReader(Server(1, []byte("hi"))), 100); err == nil {
		t.Error("an unmasked client frame was taken")
	}
	if _, err := ReadClient(bytes.NewReader(Client(1, []byte("hi"))), 100); err != nil {
		t.Errorf("a masked client frame: %v", err)
	}
	if _, err := ReadServer(bytes.NewReader(Client(1, []byte("hi"))), 100); err == nil {
		t.Error("a masked server frame was taken")
	}
}
