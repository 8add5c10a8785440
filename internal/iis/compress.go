package iis

import (
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is IIS dynamic compression: it compresses a response with
// the encoding the client prefers among the site's (gzip, br, zstd) when
// its media type is listed and it is not already encoded, partial
// (206 or Content-Range), a server-sent event stream, bodiless (HEAD, 1xx,
// 204, 304), marked Cache-Control: no-transform, or known to be smaller
// than the minimum size. Streaming responses stay streaming: a Flush
// flushes the compressor. Vary: Accept-Encoding is added to every response
// whose encoding depended on the request.
type Compression struct {
	types     []string // "text/html" exact, "text/" for "text/*"
	encodings []string
	minSize   int64
	pools     map[string]*sync.Pool
}

// NewCompression returns the stage for the site's settings.
func NewCompression(cfg siteconfig.Compression) *Compression {
	c := &Compression{encodings: cfg.Encodings, minSize: cfg.MinSize, pools: map[string]*sync.Pool{}}
	for _, t := range cfg.Types {
		c.types = append(c.types, strings.TrimSuffix(t, "*"))
	}
	gzipLevel, brLevel, zstdLevel := cfg.GzipLevel, cfg.BrotliLevel, cfg.ZstdLevel
	for _, e := range cfg.Encodings {
		switch e {
		case "gzip":
			c.pools[e] = &sync.Pool{New: func() any {
				w, _ := gzip.NewWriterLevel(io.Discard, gzipLevel) // level checked by siteconfig
				return encoder(w)
			}}
		case "br":
			c.pools[e] = &sync.Pool{New: func() any { return encoder(brotli.NewWriterLevel(io.Discard, brLevel)) }}
		case "zstd":
			c.pools[e] = &sync.Pool{New: func() any {
				w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(zstd.EncoderLevel(zstdLevel)),
					zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
				return encoder(w)
			}}
		}
	}
	return c
}

// encoder is what gzip.Writer, brotli.Writer and zstd.Encoder share.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// Respond decides whether to compress the response and, if so, sets its
// header and returns the compressing wrapper.
func (c *Compression) Respond(r *pipeline.Request, status int, h pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	if r.Method == "HEAD" || status < 200 || status == 204 || status == 206 || status == 304 {
		return nil
	}
	if h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" || !c.compressible(h.Get("Content-Type")) ||
		hasToken(h, "Cache-Control", "no-transform") {
		return nil
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < c.minSize {
			return nil
		}
	}
	if !hasToken(h, "Vary", "Accept-Encoding") && !hasToken(h, "Vary", "*") {
		h.Add("Vary", "Accept-Encoding")
	}
	enc := c.choose(r.Header)
	if enc == "" {
		return nil
	}
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", enc)
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("ETag", "W/"+et) // the compressed bytes differ from what the strong tag names
	}
	pool := c.pools[enc]
	return func(dst pipeline.BodyWriter) pipeline.BodyWriter {
		e := pool.Get().(encoder)
		e.Reset(dst)
		return &compressedBody{enc: e, dst: dst, pool: pool}
	}
}

// compressible reports whether the media type of ct is in the list.
// Server-sent events never are: each event must reach the client at once.
func (c *Compression) compressible(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	if ct == "" || ct == "text/event-stream" {
		return false
	}
	for _, t := range c.types {
		if t == ct || strings.HasSuffix(t, "/") && strings.HasPrefix(ct, t) {
			return true
		}
	}
	return false
}

// choose returns the encoding of the site's list with the client's highest
// q-value in Accept-Encoding (ties: the site's order; "*" covers encodings
// not named), or "" when the client accepts none.
func (c *Compression) choose(h pipeline.Header) string {
	ae := h.Get("Accept-Encoding")
	if ae == "" {
		return ""
	}
	best, bestQ := "", 0.0
	for _, enc := range c.encodings {
		if q := acceptQ(h, enc); q > bestQ {
			best, bestQ = enc, q
		}
	}
	return best
}

// acceptQ returns the q-value Accept-Encoding gives enc (0 if refused or
// not named and no "*").
func acceptQ(h pipeline.Header, enc string) float64 {
	q, star := -1.0, -1.0
	h.Values("Accept-Encoding", func(v string) bool {
		for item := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			val := 1.0
			if k, qv, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(qv), 64); err == nil {
					val = f
				}
			}
			switch {
			case strings.EqualFold(name, enc):
				q = val
			case name == "*":
				star = val
			}
		}
		return true
	})
	if q < 0 {
		q = star
	}
	return max(q, 0)
}

// hasToken reports whether a comma-separated field of h holds token.
func hasToken(h pipeline.Header, name, token string) bool {
	found := false
	h.Values(name, func(v string) bool {
		for t := range strings.SplitSeq(v, ",") {
			if t, _, _ = strings.Cut(t, "="); strings.EqualFold(strings.TrimSpace(t), token) {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// compressedBody compresses into dst. Close writes the encoding's trailer
// and returns the encoder to its pool.
type compressedBody struct {
	enc  encoder
	dst  pipeline.BodyWriter
	pool *sync.Pool
}

func (b *compressedBody) Write(p []byte) (int, error) { return b.enc.Write(p) }

// Flush pushes what was written so far through the compressor to the
// client, so streaming responses keep streaming.
func (b *compressedBody) Flush() error {
	if err := b.enc.Flush(); err != nil {
		return err
	}
	return b.dst.Flush()
}

func (b *compressedBody) Close() error {
	if b.enc == nil {
		return nil
	}
	err := b.enc.Close()
	b.enc.Reset(io.Discard)
	b.pool.Put(b.enc)
	b.enc = nil
	if cerr := b.dst.Close(); err == nil {
		err = cerr
	}
	return err
}
