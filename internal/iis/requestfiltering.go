package iis

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// RequestFiltering is <requestFiltering> without its size limits (those are
// pipeline.Chain.Limits, checked by the front door with the site's limits
// as defaults). Each refusal is 404 with IIS's sub-status:
//
//	404.5  denyUrlSequences     404.10 headerLimits
//	404.6  verbs                404.11 allowDoubleEscaping="false"
//	404.7  fileExtensions       404.12 allowHighBitCharacters="false"
//	404.8  hiddenSegments       404.18 denyQueryStringSequences
type RequestFiltering struct {
	cfg config.RequestFiltering
	// lower-cased copies for matching without case
	hidden, urlSeq, querySeq []string
	// extensions maps each listed extension to its first rule's allowed.
	extensions map[string]bool
	// hiddenSet holds hidden, for the lookup of ASCII segments.
	hiddenSet map[string]bool
	// hiddenEmpty is whether "" is a hidden segment (web.config cannot
	// say so); without it the empty segments ("/" has two) are skipped.
	hiddenEmpty bool
	// extensionless is whether a segment without a dot (the extension
	// ".") is allowed, decided once: every "/" asks.
	extensionless bool
}

// NewRequestFiltering returns the stage for cfg, nil when cfg is nil or
// refuses nothing (only limits, or only rules that allow).
func NewRequestFiltering(cfg *config.RequestFiltering) *RequestFiltering {
	if cfg == nil {
		return nil
	}
	s := &RequestFiltering{cfg: *cfg}
	s.hidden = lowerAll(cfg.HiddenSegments)
	s.hiddenSet = make(map[string]bool, len(s.hidden))
	for _, h := range s.hidden {
		s.hiddenSet[h] = true
	}
	s.hiddenEmpty = s.hiddenSet[""]
	s.urlSeq = lowerAll(cfg.DenyURLSequences)
	s.querySeq = lowerAll(cfg.DenyQueryStringSequences)
	s.extensions = make(map[string]bool, len(cfg.FileExtensions.Rules))
	for _, r := range cfg.FileExtensions.Rules {
		if _, ok := s.extensions[r.Extension]; !ok {
			s.extensions[r.Extension] = r.Allowed
		}
	}
	s.extensionless = cfg.FileExtensions.AllowUnlisted
	if allowed, listed := s.extensions["."]; listed {
		s.extensionless = allowed
	}
	if cfg.AllowDoubleEscaping && cfg.AllowHighBitCharacters && len(cfg.Limits.HeaderLimits) == 0 &&
		!denies(cfg.FileExtensions.AllowUnlisted, len(cfg.FileExtensions.Rules), func(i int) bool { return cfg.FileExtensions.Rules[i].Allowed }) &&
		!denies(cfg.Verbs.AllowUnlisted, len(cfg.Verbs.Rules), func(i int) bool { return cfg.Verbs.Rules[i].Allowed }) &&
		len(s.hidden)+len(s.urlSeq)+len(s.querySeq) == 0 {
		return nil
	}
	return s
}

// denies reports whether a list with allowUnlisted and n rules can refuse.
func denies(allowUnlisted bool, n int, allowed func(int) bool) bool {
	if !allowUnlisted {
		return true
	}
	for i := range n {
		if !allowed(i) {
			return true
		}
	}
	return false
}

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

func refuse(sub int, reason string) *pipeline.Result {
	return pipeline.Refuse("requestFiltering", http.StatusNotFound, sub, reason)
}

// Serve checks r in the order IIS's request filtering module does: the URL
// as a whole, then the header limits, the verb, the file extension, hidden
// segments, URL sequences and query string sequences.
func (s *RequestFiltering) Serve(r *pipeline.Request) *pipeline.Result {
	// The cleaned path decoded: what an app that decodes the path reads.
	path := pipeline.DecodePath(r.Path)
	if !s.cfg.AllowDoubleEscaping && strings.ContainsAny(path, "%+") {
		return refuse(11, "double escaping (% or + after unescaping)")
	}
	// Unescaping keeps the query's raw bytes ≥ 0x80, so the unescaped form
	// has a high-bit character whenever the raw one has.
	if !s.cfg.AllowHighBitCharacters && (highBit(path) || highBit(unescapeQuery(r.RawQuery))) {
		return refuse(12, "high-bit character")
	}
	for _, hl := range s.cfg.Limits.HeaderLimits {
		n := 0
		r.Header.Values(hl.Header, func(v string) bool { n += len(v); return true })
		if n > hl.SizeLimit {
			return refuse(10, "header "+hl.Header+" over its headerLimits sizeLimit")
		}
	}
	if res := s.verb(r.Method); res != nil {
		return res
	}
	rel := appRelative(path, r.AppPath)
	if res := s.extension(rel); res != nil {
		return res
	}
	if len(s.hidden) > 0 {
		var buf [64]byte
		for seg := range strings.SplitSeq(rel, "/") {
			if seg == "" && !s.hiddenEmpty {
				continue
			}
			if low, ok := asciiLower(&buf, seg); ok {
				if s.hiddenSet[string(low)] {
					return refuse(8, "hidden segment "+string(low))
				}
				continue
			}
			for _, h := range s.hidden { // long or not ASCII: Unicode folding
				if strings.EqualFold(seg, h) {
					return refuse(8, "hidden segment "+h)
				}
			}
		}
	}
	if len(s.urlSeq) > 0 {
		lp := strings.ToLower(path)
		for _, q := range s.urlSeq {
			if strings.Contains(lp, q) {
				return refuse(5, "URL sequence "+q+" denied")
			}
		}
	}
	if len(s.querySeq) > 0 && r.RawQuery != "" {
		raw := strings.ToLower(r.RawQuery)
		unesc := raw
		if s.cfg.UnescapeQueryString {
			unesc = strings.ToLower(unescapeQuery(r.RawQuery))
		}
		for _, q := range s.querySeq {
			if strings.Contains(raw, q) || strings.Contains(unesc, q) {
				return refuse(18, "query string sequence "+q+" denied")
			}
		}
	}
	return nil
}

func (s *RequestFiltering) verb(method string) *pipeline.Result {
	v := &s.cfg.Verbs
	if v.AllowUnlisted && len(v.Rules) == 0 {
		return nil
	}
	allowed := v.AllowUnlisted
	for _, rule := range v.Rules {
		if rule.Verb == method {
			allowed = rule.Allowed
			break
		}
	}
	if !allowed {
		return refuse(6, "verb "+method+" denied")
	}
	return nil
}

// extension applies <fileExtensions> to the last segment of path. A
// segment without a dot has the extension "." (IIS's spelling for
// extensionless URLs).
func (s *RequestFiltering) extension(path string) *pipeline.Result {
	fe := &s.cfg.FileExtensions
	if fe.AllowUnlisted && len(fe.Rules) == 0 {
		return nil
	}
	last := path[strings.LastIndexByte(path, '/')+1:]
	i := strings.LastIndexByte(last, '.')
	if i < 0 {
		if !s.extensionless {
			return refuse(7, "file extension . denied")
		}
		return nil
	}
	ext := last[i:]
	var buf [64]byte
	var allowed, listed bool
	if low, ok := asciiLower(&buf, ext); ok {
		allowed, listed = s.extensions[string(low)]
	} else {
		allowed, listed = s.extensions[strings.ToLower(ext)]
	}
	if !listed {
		allowed = fe.AllowUnlisted
	}
	if !allowed {
		return refuse(7, "file extension "+ext+" denied")
	}
	return nil
}

// appRelative returns path below the application's virtual path: hidden
// segments and extensions are about the app's own URL space.
func appRelative(path, appPath string) string {
	if appPath == "" || appPath == "/" || len(path) < len(appPath) || !strings.EqualFold(path[:len(appPath)], appPath) {
		return path
	}
	return path[len(appPath):]
}

// asciiLower writes s lower-cased into buf and returns it; ok is false
// when s is longer than buf or not ASCII (then compare with Unicode
// folding).
func asciiLower(buf *[64]byte, s string) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)], true
}

func highBit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// unescapeQuery unescapes %XX and '+' in a query string; a bad escape is
// left as it is.
func unescapeQuery(q string) string {
	if strings.IndexByte(q, '%') < 0 && strings.IndexByte(q, '+') < 0 {
		return q
	}
	if u, err := url.QueryUnescape(q); err == nil {
		return u
	}
	return q
}

// Limits returns the request limits cfg sets for its app (0 = the site's),
// nil when it sets none.
func Limits(cfg *config.RequestFiltering) *pipeline.Limits {
	if cfg == nil {
		return nil
	}
	l := cfg.Limits
	if l.MaxAllowedContentLength == 0 && l.MaxURL == 0 && l.MaxQueryString == 0 {
		return nil
	}
	return &pipeline.Limits{MaxAllowedContentLength: l.MaxAllowedContentLength, MaxURL: l.MaxURL, MaxQueryString: l.MaxQueryString}
}
