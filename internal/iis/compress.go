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
	// wrap holds, per encoding, the body wrapper Respond returns; each takes
	// a pooled compressedBody, so a response allocates none.
	wrap map[string]func(pipeline.BodyWriter) pipeline.BodyWriter
}

// NewCompression returns the stage for the site's settings.
func NewCompression(cfg siteconfig.Compression) *Compression {
	c := &Compression{encodings: cfg.Encodings, minSize: cfg.MinSize, wrap: map[string]func(pipeline.BodyWriter) pipeline.BodyWriter{}}
	for _, t := range cfg.Types {
		c.types = append(c.types, strings.TrimSuffix(t, "*"))
	}
	gzipLevel, brLevel, zstdLevel := cfg.GzipLevel, cfg.BrotliLevel, cfg.ZstdLevel
	for _, e := range cfg.Encodings {
		var newEnc func() encoder
		switch e {
		case "gzip":
			newEnc = func() encoder {
				w, _ := gzip.NewWriterLevel(io.Discard, gzipLevel) // level checked by siteconfig
				return w
			}
		case "br":
			newEnc = func() encoder { return brotli.NewWriterLevel(io.Discard, brLevel) }
		case "zstd":
			newEnc = func() encoder {
				w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(zstd.EncoderLevel(zstdLevel)),
					zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
				return w
			}
		default:
			continue
		}
		pool := &sync.Pool{}
		pool.New = func() any { return &compressedBody{enc: newEnc(), pool: pool} }
		c.wrap[e] = func(dst pipeline.BodyWriter) pipeline.BodyWriter {
			b := pool.Get().(*compressedBody)
			b.enc.Reset(dst)
			b.dst = dst
			return b
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
	return c.wrap[enc]
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
		if t == ct || t == "*/" || strings.HasSuffix(t, "/") && strings.HasPrefix(ct, t) {
			return true
		}
	}
	return false
}

// choose returns the encoding of the site's list with the client's highest
// q-value in Accept-Encoding (ties: the site's order; "*" covers encodings
// not named), or "" when the client accepts none.
func (c *Compression) choose(h pipeline.Header) string {
	var q [3]float64 // per c.encodings (at most gzip, br, zstd); -1: not named
	if len(c.encodings) > len(q) {
		return ""
	}
	for i := range q {
		q[i] = -1
	}
	star, named := -1.0, false
	for _, v := range headerValues(h, "Accept-Encoding") {
		for item := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			named = true
			val := 1.0
			if k, qv, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(qv), 64); err == nil {
					val = f
				}
			}
			if name == "*" {
				star = val
				continue
			}
			for i, enc := range c.encodings {
				if strings.EqualFold(name, enc) {
					q[i] = val
				}
			}
		}
	}
	if !named {
		return ""
	}
	best, bestQ := "", 0.0
	for i, enc := range c.encodings {
		v := q[i]
		if v < 0 {
			v = star
		}
		if v > bestQ {
			best, bestQ = enc, v
		}
	}
	return best
}

// hasToken reports whether a comma-separated field of h holds token.
func hasToken(h pipeline.Header, name, token string) bool {
	for _, v := range headerValues(h, name) {
		for t := range strings.SplitSeq(v, ",") {
			if t, _, _ = strings.Cut(t, "="); strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerValues returns the values of name (in canonical form), without
// allocating for the header forms the front door hands the outbound
// stages.
func headerValues(h pipeline.Header, name string) []string {
	switch hh := h.(type) {
	case pipeline.HTTPHeader:
		return hh[name]
	case pipeline.ResponseHeader:
		// A response keeps its fields as the app wrote them: name, or the
		// one key that matches it without case.
		if vs, ok := hh[name]; ok {
			return vs
		}
		for k, vs := range hh {
			if len(k) == len(name) && strings.EqualFold(k, name) {
				return vs
			}
		}
		return nil
	}
	var vs []string
	h.Values(name, func(v string) bool { vs = append(vs, v); return true })
	return vs
}

// compressedBody compresses into dst. Close writes the encoding's trailer
// and returns the body, with its encoder, to its pool.
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

// Close ends the body; it is called once (the front door's respWriter
// does), and b must not be used afterwards.
func (b *compressedBody) Close() error {
	err := b.enc.Close()
	if cerr := b.dst.Close(); err == nil {
		err = cerr
	}
	b.enc.Reset(io.Discard)
	b.dst = nil
	b.pool.Put(b)
	return err
}
