package rewrite

import (
	"bytes"
	"fmt"
	"log/slog"
	"mime"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// tagAttrs are the URL attributes URL Rewrite's filterByTags reads, by
// lower-cased tag.
var tagAttrs = map[string][]string{
	"a": {"href"}, "area": {"href"}, "base": {"href"}, "form": {"action"},
	"frame": {"src", "longdesc"}, "head": {"profile"}, "iframe": {"src", "longdesc"},
	"img": {"src", "longdesc", "usemap"}, "input": {"src", "usemap"}, "link": {"href"}, "script": {"src"},
}

// HasBody reports whether o has rules on the response body.
func (o *Outbound) HasBody() bool {
	if o == nil {
		return false
	}
	for i := range o.rules {
		if o.rules[i].attrs != nil {
			return true
		}
	}
	return false
}

// BodyRules are the rules on the body of one response whose
// preconditions it passes. Not safe for concurrent use: one per response.
type BodyRules struct {
	in    Input
	e     evaluation
	rules []*outRule
}

// Body returns the rules on the body that apply to the response (status,
// header h) of the request in, nil when none does. The error is a
// precondition's match that exceeded its timeout.
func (o *Outbound) Body(in *Input, status int, h pipeline.Header) (*BodyRules, error) {
	b := &BodyRules{in: *in}
	b.e = evaluation{rs: &o.base, in: &b.in, path: in.Path, query: in.Query, fileBase: o.base.appPath, dir: o.base.dir, resp: h, status: status}
	for i := range o.rules {
		r := &o.rules[i]
		if r.attrs == nil {
			continue
		}
		if r.pre != nil {
			b.e.r, b.e.c = nil, nil
			ok, err := b.e.conditions(r.pre)
			if err != nil {
				return nil, fmt.Errorf("outbound rule %q: preCondition %q: %w", r.name, r.pre.name, err)
			}
			if !ok {
				continue
			}
		}
		b.rules = append(b.rules, r)
	}
	if len(b.rules) == 0 {
		return nil, nil
	}
	return b, nil
}

// rewrites reports whether some rule reads attribute attr of tag (both
// lower case).
func (b *BodyRules) rewrites(tag string) bool {
	for _, r := range b.rules {
		if _, ok := r.attrs[tag]; ok {
			return true
		}
	}
	return false
}

// Attr runs the rules over the value of attribute attr of tag (both lower
// case): each rule that reads it matches its pattern against the value so
// far, tests its conditions, and with a Rewrite action replaces it. It
// returns the value and whether a rule changed it.
func (b *BodyRules) Attr(tag, attr, value string) (string, bool, error) {
	changed := false
	for _, r := range b.rules {
		names, ok := r.attrs[tag]
		if !ok || !containsFold(names, attr) {
			continue
		}
		caps, ok, err := r.match.match(value)
		if err != nil {
			return value, changed, fmt.Errorf("outbound rule %q: match %q: %w", r.name, value, err)
		}
		if !ok {
			continue
		}
		b.e.r, b.e.c = caps, nil
		if ok, err = b.e.conditions(&r.rule); err != nil {
			return value, changed, fmt.Errorf("outbound rule %q: %w", r.name, err)
		}
		if !ok {
			continue
		}
		if r.rewrite {
			value, changed = string(r.value.expand(nil, &b.e)), true
		}
		if r.stop {
			break
		}
	}
	return value, changed, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// IsHTML reports whether the Content-Type value ct is text/html, the only
// body the rules rewrite.
func IsHTML(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/html"
}

// maxPending bounds what the rewriter holds back waiting for the end of a
// tag; a longer "tag" is passed on as it is.
const maxPending = 64 << 10

// htmlRewriter rewrites the URL attributes of an HTML body as it streams
// through, holding back only an unfinished tag (or the end of a comment
// or script that may be cut), never the whole body.
type htmlRewriter struct {
	next    pipeline.BodyWriter
	rules   *BodyRules
	log     *slog.Logger
	pending []byte
	// raw is the end tag ("</script") of the raw text being passed on, or
	// "-->" inside a comment; "" in ordinary text.
	raw    string
	failed bool // a rule failed: the rest goes through unchanged
}

// NewHTMLRewriter returns a body writer that rewrites, with rules, the
// HTML written to it and passes it on to next.
func NewHTMLRewriter(next pipeline.BodyWriter, rules *BodyRules, log *slog.Logger) pipeline.BodyWriter {
	return &htmlRewriter{next: next, rules: rules, log: log}
}

func (h *htmlRewriter) Write(p []byte) (int, error) {
	h.pending = append(h.pending, p...)
	out, rest := h.process(h.pending)
	if len(out) > 0 {
		if _, err := h.next.Write(out); err != nil {
			return 0, err
		}
	}
	h.pending = append(h.pending[:0], rest...)
	return len(p), nil
}

func (h *htmlRewriter) Flush() error { return h.next.Flush() }

// Close passes on what was held back, as it is, and closes next.
func (h *htmlRewriter) Close() error {
	if len(h.pending) > 0 {
		if _, err := h.next.Write(h.pending); err != nil {
			return err
		}
		h.pending = nil
	}
	return h.next.Close()
}

// process returns what of buf can go out now (rewritten) and what must
// wait for more bytes.
func (h *htmlRewriter) process(buf []byte) (out, rest []byte) {
	for len(buf) > 0 {
		if h.failed {
			return append(out, buf...), nil
		}
		if h.raw != "" {
			i := indexFold(buf, h.raw)
			if i < 0 {
				keep := min(len(buf), len(h.raw)-1) // the end may be cut
				return append(out, buf[:len(buf)-keep]...), buf[len(buf)-keep:]
			}
			out, buf = append(out, buf[:i+len(h.raw)]...), buf[i+len(h.raw):]
			h.raw = ""
			continue
		}
		i := bytes.IndexByte(buf, '<')
		if i < 0 {
			return append(out, buf...), nil
		}
		out, buf = append(out, buf[:i]...), buf[i:]
		if len(buf) < 4 {
			return out, buf // "<!--" or a tag name may follow
		}
		if bytes.HasPrefix(buf, []byte("<!--")) {
			out, buf, h.raw = append(out, "<!--"...), buf[4:], "-->"
			continue
		}
		if !isLetter(buf[1]) {
			out, buf = append(out, '<'), buf[1:]
			continue
		}
		end := tagEnd(buf)
		if end < 0 {
			if len(buf) > maxPending {
				out, buf = append(out, '<'), buf[1:] // not a tag we can wait for
				continue
			}
			return out, buf
		}
		tag, name := h.rewriteTag(buf[:end])
		out, buf = append(out, tag...), buf[end:]
		if (name == "script" || name == "style") && !bytes.HasSuffix(bytes.TrimRight(tag, "> \t\r\n"), []byte("/")) {
			h.raw = "</" + name
		}
	}
	return out, nil
}

// tagEnd returns the length of the start tag at the start of b (up to and
// with its '>', quotes respected), or -1 when b holds no end yet.
func tagEnd(b []byte) int {
	var quote byte
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i + 1
		}
	}
	return -1
}

// rewriteTag returns the start tag t with the attributes the rules read
// rewritten, and its lower-cased name.
func (h *htmlRewriter) rewriteTag(t []byte) ([]byte, string) {
	i := 1
	for i < len(t) && !isSpace(t[i]) && t[i] != '>' && t[i] != '/' {
		i++
	}
	name := strings.ToLower(string(t[1:i]))
	if !h.rules.rewrites(name) {
		return t, name
	}
	var out []byte
	last := 0
	for i < len(t) {
		for i < len(t) && (isSpace(t[i]) || t[i] == '/') {
			i++
		}
		start := i
		for i < len(t) && !isSpace(t[i]) && t[i] != '=' && t[i] != '>' && t[i] != '/' {
			i++
		}
		if i == start {
			break // '>'
		}
		attr := string(t[start:i])
		j := i
		for j < len(t) && isSpace(t[j]) {
			j++
		}
		if j >= len(t) || t[j] != '=' {
			continue // an attribute without a value
		}
		j++
		for j < len(t) && isSpace(t[j]) {
			j++
		}
		var vs, ve int
		var quote byte
		if j < len(t) && (t[j] == '"' || t[j] == '\'') {
			quote = t[j]
			vs = j + 1
			k := bytes.IndexByte(t[vs:], quote)
			if k < 0 {
				break
			}
			ve = vs + k
			i = ve + 1
		} else {
			vs = j
			ve = j
			for ve < len(t) && !isSpace(t[ve]) && t[ve] != '>' {
				ve++
			}
			i = ve
		}
		v, changed, err := h.rules.Attr(name, strings.ToLower(attr), string(t[vs:ve]))
		if err != nil {
			h.log.Warn("outbound rewrite rule failed; the rest of the body is sent unchanged", "err", err)
			h.failed = true
			break
		}
		if !changed {
			continue
		}
		if quote == 0 {
			out = append(append(append(out, t[last:vs]...), '"'), attrEscape(v, '"')...)
			out = append(out, '"')
		} else {
			out = append(append(out, t[last:vs]...), attrEscape(v, quote)...)
		}
		last = ve
	}
	if out == nil {
		return t, name
	}
	return append(out, t[last:]...), name
}

// attrEscape makes v safe inside an attribute value quoted with quote.
func attrEscape(v string, quote byte) string {
	if quote == '"' {
		return strings.ReplaceAll(v, `"`, "&quot;")
	}
	return strings.ReplaceAll(v, "'", "&#39;")
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isSpace(c byte) bool  { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// indexFold is bytes.Index ignoring ASCII case; sep is lower case.
func indexFold(b []byte, sep string) int {
	for i := 0; i+len(sep) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(sep)], []byte(sep)) {
			return i
		}
	}
	return -1
}
