package h2conn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestWriteHeaderBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		size, max int
		end       bool
		want      []string // frame type and flags, in order
	}{
		{name: "empty", size: 0, max: 16, end: true, want: []string{"HEADERS end-stream end-headers"}},
		{name: "one frame", size: 16, max: 16, want: []string{"HEADERS end-headers"}},
		{name: "split", size: 40, max: 16, end: true,
			want: []string{"HEADERS end-stream", "CONTINUATION", "CONTINUATION end-headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			block := bytes.Repeat([]byte{'x'}, tc.size)
			if err := WriteHeaderBlock(http2.NewFramer(&out, nil), 3, block, tc.end, tc.max); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(nil, &out)
			var got []string
			var frags []byte
			for {
				f, err := fr.ReadFrame()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if f.Header().StreamID != 3 || int(f.Header().Length) > tc.max {
					t.Errorf("frame %v: want stream 3 and at most %d bytes", f.Header(), tc.max)
				}
				d := f.Header().Type.String()
				switch f := f.(type) {
				case *http2.HeadersFrame:
					if f.StreamEnded() {
						d += " end-stream"
					}
					if f.HeadersEnded() {
						d += " end-headers"
					}
					frags = append(frags, f.HeaderBlockFragment()...)
				case *http2.ContinuationFrame:
					if f.HeadersEnded() {
						d += " end-headers"
					}
					frags = append(frags, f.HeaderBlockFragment()...)
				}
				got = append(got, d)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("frames %q, want %q", got, tc.want)
			}
			if !bytes.Equal(frags, block) {
				t.Errorf("the fragments make %d bytes, not the block's %d", len(frags), len(block))
			}
		})
	}
}

func TestAddWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		w, inc, want int64
		ok           bool
	}{
		{w: 0, inc: MaxWindow, want: MaxWindow, ok: true},
		{w: 1, inc: MaxWindow, want: 1, ok: false},
		{w: -100, inc: 50, want: -50, ok: true}, // a window a SETTINGS made negative
		{w: 10, inc: -20, want: -10, ok: true},  // a smaller SETTINGS_INITIAL_WINDOW_SIZE
	} {
		w := tc.w
		if ok := AddWindow(&w, tc.inc); ok != tc.ok || w != tc.want {
			t.Errorf("AddWindow(%d, %d) = %v, window %d; want %v, %d", tc.w, tc.inc, ok, w, tc.ok, tc.want)
		}
	}
}

func TestPeerApply(t *testing.T) {
	t.Parallel()
	p := NewPeer()
	if d, err := p.Apply(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}); err != nil || d != 100-InitialWindow || p.InitWin != 100 {
		t.Errorf("INITIAL_WINDOW_SIZE 100: delta %d, %v, InitWin %d", d, err, p.InitWin)
	}
	if d, err := p.Apply(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20}); err != nil || d != 0 || p.MaxFrame != 1<<20 {
		t.Errorf("MAX_FRAME_SIZE 1 MiB: delta %d, %v, MaxFrame %d", d, err, p.MaxFrame)
	}
	for _, s := range []http2.Setting{
		{ID: http2.SettingInitialWindowSize, Val: MaxWindow + 1},
		{ID: http2.SettingMaxFrameSize, Val: DefaultMaxFrameSize - 1},
		{ID: http2.SettingMaxFrameSize, Val: 1 << 24},
		{ID: http2.SettingEnablePush, Val: 2},
	} {
		if _, err := p.Apply(s); err == nil {
			t.Errorf("%v: no error", s)
		}
	}
	if p.InitWin != 100 || p.MaxFrame != 1<<20 {
		t.Errorf("settings out of bounds were applied: InitWin %d, MaxFrame %d", p.InitWin, p.MaxFrame)
	}

	// A new table size reaches the encoder at the next header block, which
	// starts with a dynamic table size update (RFC 7541 §6.3); the block
	// after it does not.
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	if _, err := p.Apply(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		buf.Reset()
		p.SyncTable(enc)
		_ = enc.WriteField(hpack.HeaderField{Name: "a", Value: "b"})
		if got := buf.Bytes()[0]&0xe0 == 0x20; got != want {
			t.Errorf("header block %d starts with a table size update: %v, want %v", i, got, want)
		}
	}
}

func TestGoAwayCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code http2.ErrCode
		ok   bool
	}{
		{err: fmt.Errorf("read: %w", Errorf(http2.ErrCodeFlowControl, "x")), code: http2.ErrCodeFlowControl, ok: true},
		{err: http2.ConnectionError(http2.ErrCodeProtocol), code: http2.ErrCodeProtocol, ok: true},
		{err: http2.ErrFrameTooLarge, code: http2.ErrCodeFrameSize, ok: true},
		{err: io.ErrUnexpectedEOF},
		{err: http2.StreamError{StreamID: 1, Code: http2.ErrCodeProtocol}},
	} {
		if code, ok := GoAwayCode(tc.err); code != tc.code || ok != tc.ok {
			t.Errorf("GoAwayCode(%v) = %v, %v; want %v, %v", tc.err, code, ok, tc.code, tc.ok)
		}
	}
}

// TestRecv follows a connection's and a stream's receive windows through
// DATA with padding, reads and the stream's end: room goes back once a
// quarter of a window was read or dropped, and never beyond what came.
func TestRecv(t *testing.T) {
	t.Parallel()
	c := NewConnRecv(400)
	s := NewStreamRecv(100)
	if !s.Fits(100) || s.Fits(101) || !c.Fits(400) || c.Fits(401) {
		t.Fatal("a fresh window does not fit exactly its size")
	}
	s.Take(&c, 60, make([]byte, 50)) // 10 bytes of padding
	if s.Len() != 50 || s.Fits(41) || c.Fits(341) {
		t.Fatalf("after 60 bytes: Len %d, stream fits 41: %v, connection fits 341: %v", s.Len(), s.Fits(41), c.Fits(341))
	}
	if inc := c.Increment(); inc != 0 {
		t.Errorf("connection increment %d before a quarter of its window", inc)
	}
	p := make([]byte, 10)
	if n, inc := s.Read(&c, p, true); n != 10 || inc != 0 {
		t.Errorf("Read of 10 (20 bytes free, a quarter is 25): %d, increment %d", n, inc)
	}
	if n, inc := s.Read(&c, p, true); n != 10 || inc != 30 {
		t.Errorf("Read of 10 more (30 free): %d, increment %d, want 30", n, inc)
	}
	if n, inc := s.Read(&c, make([]byte, 40), false); n != 30 || inc != 0 {
		t.Errorf("Read of the rest, no more to come: %d, increment %d, want none", n, inc)
	}
	if inc := c.Increment(); inc != 0 {
		t.Errorf("connection increment %d with 60 bytes free of 400", inc)
	}
	s.Take(&c, 50, make([]byte, 50))
	c.Drop(40)
	if inc := c.Increment(); inc != 100 {
		t.Errorf("connection increment %d after 100 bytes read or dropped, want 100", inc)
	}
	s.Discard(&c)
	if s.Len() != 0 || c.Increment() != 0 || !c.Fits(350) || c.Fits(351) {
		t.Errorf("after Discard: Len %d; the connection should have 50 bytes to give back and 350 of room", s.Len())
	}
}

func TestFieldNames(t *testing.T) {
	l := NewLowerNames("Content-Type")
	c := NewCanonicalNames("Content-Type")
	for _, tc := range []struct{ in, lower, canonical string }{
		{in: "Content-Type", lower: "content-type"},
		{in: "X-Odd-Name", lower: "x-odd-name"},
		{in: "content-type", lower: "content-type", canonical: "Content-Type"},
		{in: "x-odd-name", lower: "x-odd-name", canonical: "X-Odd-Name"},
	} {
		if got := l.Lower(tc.in); got != tc.lower {
			t.Errorf("Lower(%q) = %q, want %q", tc.in, got, tc.lower)
		}
		if tc.canonical != "" {
			if got := c.Canonical(tc.in); got != tc.canonical {
				t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.canonical)
			}
		}
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = l.Lower("Content-Type"), c.Canonical("content-type") }); n != 0 {
		t.Errorf("a common name costs %v allocations", n)
	}
}

func TestConnectionSpecific(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"connection": true, "proxy-connection": true, "keep-alive": true, "transfer-encoding": true,
		"upgrade": true, "te": false, "content-type": false, "Connection": false,
	} {
		if got := ConnectionSpecific(name); got != want {
			t.Errorf("ConnectionSpecific(%q) = %v", name, got)
		}
	}
}

// TestNewFramer checks the Framer's bounds: a header list over its size
// is read Truncated; a frame over the size read is a connection error.
func TestNewFramer(t *testing.T) {
	t.Parallel()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := range 3 { // 3 × 51 bytes of header list (RFC 9113 §6.5.2)
		_ = enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-field-%d", i), Value: "0123456789"})
	}
	var wire bytes.Buffer
	w := http2.NewFramer(&wire, nil)
	if err := WriteHeaderBlock(w, 1, block.Bytes(), true, DefaultMaxFrameSize); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteData(1, true, make([]byte, DefaultMaxFrameSize+1)); err != nil {
		t.Fatal(err)
	}
	fr := NewFramer(io.Discard, &wire, DefaultMaxFrameSize, 100)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if mh, ok := f.(*http2.MetaHeadersFrame); !ok || !mh.Truncated {
		t.Errorf("a header list over the size read as %T (want a Truncated *http2.MetaHeadersFrame)", f)
	}
	if _, err := fr.ReadFrame(); !errors.Is(err, http2.ErrFrameTooLarge) {
		t.Errorf("a frame over the size read: %v, want %v", err, http2.ErrFrameTooLarge)
	}
}

// TestAddValue checks that a name's second value does not overwrite the
// next field's in the shared array.
func TestAddValue(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	vals := make([]string, 3)
	AddValue(h, vals, 0, "A", "1")
	AddValue(h, vals, 1, "B", "2")
	AddValue(h, vals, 2, "A", "3")
	if fmt.Sprint(h["A"], h["B"]) != "[1 3] [2]" {
		t.Errorf("header %v, want A: [1 3], B: [2]", h)
	}
}
