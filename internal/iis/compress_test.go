package iis

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// sink is the client side of a body: it records what reached it and when
// it was flushed.
type sink struct {
	bytes.Buffer
	flushes []int // length of the buffer at each Flush
	closed  bool
}

func (s *sink) Flush() error { s.flushes = append(s.flushes, s.Len()); return nil }
func (s *sink) Close() error { s.closed = true; return nil }

func newTestCompression() *Compression {
	return NewCompression(siteconfig.Compression{MinSize: 100}.WithDefaults())
}

func TestCompressionDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		status int
		accept string
		header http.Header
		want   string // Content-Encoding chosen, "" for none
	}{
		{"gzip json", "GET", 200, "gzip", http.Header{"Content-Type": {"application/json; charset=utf-8"}}, "gzip"},
		{"text wildcard", "GET", 200, "gzip, deflate, br", http.Header{"Content-Type": {"text/html"}}, "gzip"},
		{"client prefers br", "GET", 200, "gzip;q=0.5, br", http.Header{"Content-Type": {"text/html"}}, "br"},
		{"client prefers zstd", "GET", 200, "zstd, gzip;q=0.9", http.Header{"Content-Type": {"text/html"}}, "zstd"},
		{"star", "GET", 200, "*", http.Header{"Content-Type": {"text/plain"}}, "gzip"},
		{"gzip refused", "GET", 200, "gzip;q=0, br;q=0.1", http.Header{"Content-Type": {"text/plain"}}, "br"},
		{"identity only", "GET", 200, "identity", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"no accept-encoding", "GET", 200, "", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"image not listed", "GET", 200, "gzip", http.Header{"Content-Type": {"image/png"}}, ""},
		{"no content type", "GET", 200, "gzip", http.Header{}, ""},
		{"already encoded", "GET", 200, "gzip", http.Header{"Content-Type": {"text/plain"}, "Content-Encoding": {"br"}}, ""},
		{"range", "GET", 206, "gzip", http.Header{"Content-Type": {"text/plain"}, "Content-Range": {"bytes 0-9/100"}}, ""},
		{"content-range on 200", "GET", 200, "gzip", http.Header{"Content-Type": {"text/plain"}, "Content-Range": {"bytes */100"}}, ""},
		{"event stream", "GET", 200, "gzip", http.Header{"Content-Type": {"text/event-stream"}}, ""},
		{"head", "HEAD", 200, "gzip", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"no content", "GET", 204, "gzip", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"not modified", "GET", 304, "gzip", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"switching protocols", "GET", 101, "gzip", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"small", "GET", 200, "gzip", http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"99"}}, ""},
		{"large enough", "GET", 200, "gzip", http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"100"}}, "gzip"},
		{"no-transform", "GET", 200, "gzip", http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"public, no-transform"}}, ""},
		{"error page", "GET", 404, "gzip", http.Header{"Content-Type": {"text/html"}}, "gzip"},
	}
	c := newTestCompression()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := http.Header{}
			if tt.accept != "" {
				req.Set("Accept-Encoding", tt.accept)
			}
			h := tt.header.Clone()
			h.Set("ETag", `"v1"`)
			wrap := c.Respond(&pipeline.Request{Method: tt.method, Header: pipeline.HTTPHeader(req)}, tt.status, pipeline.HTTPHeader(h))
			if (wrap != nil) != (tt.want != "") {
				t.Fatalf("wrapped = %v, want encoding %q", wrap != nil, tt.want)
			}
			if got := h.Get("Content-Encoding"); tt.want != "" && got != tt.want {
				t.Errorf("Content-Encoding = %q, want %q", got, tt.want)
			}
			if tt.want != "" {
				if h.Get("Content-Length") != "" || h.Get("ETag") != `W/"v1"` || h.Get("Vary") != "Accept-Encoding" {
					t.Errorf("compressed header = %v (want no Content-Length, a weak ETag, Vary)", h)
				}
			}
		})
	}
}

func TestCompressionAllTypes(t *testing.T) {
	t.Parallel()
	c := NewCompression(siteconfig.Compression{Types: []string{"*/*"}}.WithDefaults())
	req := &pipeline.Request{Method: "GET", Header: pipeline.HTTPHeader(http.Header{"Accept-Encoding": {"gzip"}})}
	for ct, want := range map[string]bool{"image/svg+xml": true, "application/wasm": true, "text/event-stream": false, "": false} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		if got := c.Respond(req, 200, pipeline.HTTPHeader(h)) != nil; got != want {
			t.Errorf("*/* and %q: compressed %v, want %v", ct, got, want)
		}
	}
}

func TestCompressionVary(t *testing.T) {
	t.Parallel()
	c := newTestCompression()
	h := http.Header{"Content-Type": {"text/plain"}, "Vary": {"Origin, accept-encoding"}}
	c.Respond(&pipeline.Request{Method: "GET", Header: pipeline.HTTPHeader(http.Header{"Accept-Encoding": {"gzip"}})}, 200, pipeline.HTTPHeader(h))
	if got := h["Vary"]; len(got) != 1 {
		t.Errorf("Vary = %q: Accept-Encoding added twice", got)
	}
	h = http.Header{"Content-Type": {"text/plain"}}
	c.Respond(&pipeline.Request{Method: "GET", Header: pipeline.HTTPHeader(http.Header{})}, 200, pipeline.HTTPHeader(h))
	if h.Get("Vary") != "Accept-Encoding" {
		t.Error("an uncompressed response of a compressible type lacks Vary: Accept-Encoding")
	}
}

func TestCompressionRoundTripAndStreaming(t *testing.T) {
	t.Parallel()
	decode := map[string]func(io.Reader) (io.Reader, error){
		"gzip": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"br":   func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil },
		"zstd": func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) },
	}
	c := newTestCompression()
	for enc, dec := range decode {
		t.Run(enc, func(t *testing.T) {
			t.Parallel()
			for round := range 2 { // the second round reuses a pooled encoder
				h := http.Header{"Content-Type": {"text/plain"}}
				wrap := c.Respond(&pipeline.Request{Method: "GET", Header: pipeline.HTTPHeader(http.Header{"Accept-Encoding": {enc}})}, 200, pipeline.HTTPHeader(h))
				if wrap == nil {
					t.Fatal("not compressed")
				}
				dst := &sink{}
				body := wrap(dst)
				first := "event one\n"
				if _, err := body.Write([]byte(first)); err != nil {
					t.Fatal(err)
				}
				if err := body.Flush(); err != nil {
					t.Fatal(err)
				}
				if len(dst.flushes) != 1 || dst.flushes[0] == 0 {
					t.Fatalf("round %d: flush did not reach the client: %v", round, dst.flushes)
				}
				// What reached the client so far decodes to the first write.
				r, err := dec(bytes.NewReader(dst.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(first))
				if _, err := io.ReadFull(r, got); err != nil || string(got) != first {
					t.Fatalf("after flush the client can read %q, %v; want %q", got, err, first)
				}
				rest := strings.Repeat("more text ", 1000)
				if _, err := body.Write([]byte(rest)); err != nil {
					t.Fatal(err)
				}
				if err := body.Close(); err != nil || !dst.closed {
					t.Fatalf("close: %v, dst closed %v", err, dst.closed)
				}
				r, err = dec(bytes.NewReader(dst.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				all, err := io.ReadAll(r)
				if err != nil || string(all) != first+rest {
					t.Fatalf("decoded %d bytes, %v; want %d", len(all), err, len(first+rest))
				}
				if dst.Len() >= len(first+rest)/4 {
					t.Errorf("compressed %d bytes into %d", len(first+rest), dst.Len())
				}
			}
		})
	}
}

// TestHeaderValuesNoAlloc checks that the compression stage reads a
// response's fields without allocating, in both header forms the front
// door hands it (a response keeps its field names as the app wrote them).
func TestHeaderValuesNoAlloc(t *testing.T) {
	rh := pipeline.ResponseHeader{"Content-Type": {"text/html"}, "cache-control": {"no-transform"}}
	hh := pipeline.HTTPHeader{"Content-Type": {"text/html"}}
	if got := headerValues(rh, "Cache-Control"); len(got) != 1 || got[0] != "no-transform" {
		t.Fatalf("headerValues(Cache-Control) = %q, want the field written as cache-control", got)
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = headerValues(rh, "Content-Type")
		_ = headerValues(rh, "Cache-Control")
		_ = headerValues(rh, "Content-Encoding")
		_ = headerValues(hh, "Content-Type")
	}); n != 0 {
		t.Errorf("headerValues allocates %v times per call set, want 0", n)
	}
}
