package rewrite

import (
	"fmt"
	"strconv"
	"strings"
)

// template is a compiled input string or substitution URL: literals,
// back-references {R:n} {C:n}, server variables {NAME}, functions
// {ToLower:…} {UrlEncode:…} {UrlDecode:…} and map lookups {Map:…}.
type template []segment

type segKind uint8

const (
	segLiteral segKind = iota
	segRule            // {R:n}
	segCond            // {C:n}
	segVar             // {NAME}
	segFunc            // {ToLower:…} …
	segMap             // {MapName:…}
)

type segment struct {
	kind  segKind
	lit   string      // segLiteral
	n     int         // segRule, segCond: the index
	v     variable    // segVar
	fn    function    // segFunc
	m     *rewriteMap // segMap
	inner template    // segFunc, segMap: the argument
}

type function uint8

const (
	fnToLower function = iota + 1
	fnUrlEncode
	fnUrlDecode
)

// functions are the built-in functions by lower-cased name.
var functions = map[string]function{
	"tolower":   fnToLower,
	"urlencode": fnUrlEncode,
	"urldecode": fnUrlDecode,
}

// parseTemplate compiles s. maps are the rewrite maps by lower-cased name.
func parseTemplate(s string, maps map[string]*rewriteMap) (template, error) {
	p := templateParser{s: s, maps: maps}
	t, err := p.parse(false)
	if err != nil {
		return nil, err
	}
	return t, nil
}

type templateParser struct {
	s    string
	i    int
	maps map[string]*rewriteMap
}

// parse reads segments up to the end of s or, when nested, up to and
// including the "}" that closes the enclosing function.
func (p *templateParser) parse(nested bool) (template, error) {
	var t template
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '{':
			p.i++
			seg, err := p.param()
			if err != nil {
				return nil, err
			}
			t = append(t, seg)
		case c == '}' && nested:
			p.i++
			return t, nil
		default:
			j := p.i + 1
			for j < len(p.s) && p.s[j] != '{' && (p.s[j] != '}' || !nested) {
				j++
			}
			t = append(t, segment{kind: segLiteral, lit: p.s[p.i:j]})
			p.i = j
		}
	}
	if nested {
		return nil, fmt.Errorf("missing \"}\" in %q", p.s)
	}
	return t, nil
}

// param reads what follows a "{".
func (p *templateParser) param() (segment, error) {
	start := p.i
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '{':
			return segment{}, fmt.Errorf("\"{\" inside the name at offset %d of %q", p.i, p.s)
		case '}':
			name := p.s[start:p.i]
			p.i++
			v, err := lookupVariable(name)
			if err != nil {
				return segment{}, err
			}
			return segment{kind: segVar, v: v}, nil
		case ':':
			name := p.s[start:p.i]
			p.i++
			return p.call(name)
		}
		p.i++
	}
	return segment{}, fmt.Errorf("missing \"}\" in %q", p.s)
}

// call reads the argument of {name:…}.
func (p *templateParser) call(name string) (segment, error) {
	key := strings.ToLower(name)
	if key == "r" || key == "c" {
		end := strings.IndexByte(p.s[p.i:], '}')
		if end < 0 {
			return segment{}, fmt.Errorf("missing \"}\" in %q", p.s)
		}
		digits := p.s[p.i : p.i+end]
		p.i += end + 1
		n, err := strconv.Atoi(digits)
		if err != nil || n < 0 || n > 9 || digits == "" || digits[0] == '+' || digits[0] == '-' {
			return segment{}, fmt.Errorf("{%s:%s}: a back-reference index is 0–9", name, digits)
		}
		kind := segRule
		if key == "c" {
			kind = segCond
		}
		return segment{kind: kind, n: n}, nil
	}
	fn, isFunc := functions[key]
	m := p.maps[key]
	if !isFunc && m == nil {
		return segment{}, fmt.Errorf("{%s:…}: no such function or rewrite map (functions: ToLower, UrlEncode, UrlDecode)", name)
	}
	inner, err := p.parse(true)
	if err != nil {
		return segment{}, err
	}
	if isFunc {
		return segment{kind: segFunc, fn: fn, inner: inner}, nil
	}
	return segment{kind: segMap, m: m, inner: inner}, nil
}

// usesRule reports whether t refers to {R:n}.
func (t template) usesRule() bool {
	for _, s := range t {
		if s.kind == segRule || s.inner.usesRule() {
			return true
		}
	}
	return false
}

// usesConditions reports whether t refers to {C:n}.
func (t template) usesConditions() bool {
	for _, s := range t {
		if s.kind == segCond || s.inner.usesConditions() {
			return true
		}
	}
	return false
}

// expand appends t, evaluated in e, to b.
func (t template) expand(b []byte, e *evaluation) []byte {
	for i := range t {
		s := &t[i]
		switch s.kind {
		case segLiteral:
			b = append(b, s.lit...)
		case segRule:
			b = append(b, capture(e.r, s.n)...)
		case segCond:
			b = append(b, capture(e.c, s.n)...)
		case segVar:
			b = e.variable(b, s.v)
		case segFunc:
			arg := string(s.inner.expand(nil, e))
			switch s.fn {
			case fnToLower:
				b = append(b, strings.ToLower(arg)...)
			case fnUrlEncode:
				b = append(b, urlEncode(arg)...)
			case fnUrlDecode:
				b = append(b, decode(arg, true)...)
			}
		case segMap:
			b = append(b, s.m.lookup(string(s.inner.expand(nil, e)))...)
		}
	}
	return b
}

// capture returns capture n, or "" when there are fewer captures (as IIS
// expands a back-reference that captured nothing).
func capture(caps []string, n int) string {
	if n < len(caps) {
		return caps[n]
	}
	return ""
}
