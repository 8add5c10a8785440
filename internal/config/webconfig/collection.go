package webconfig

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// entry is one <add> of an IIS collection that survived the <remove> and
// <clear/> elements after it, or (from > 0) the inherited item from-1.
type entry struct {
	t     token
	se    xml.StartElement
	attrs map[string]xml.Attr
	key   string
	from  int
}

// has reports whether the entry sets attribute name.
func (e *entry) has(name string) bool { _, ok := e.attrs[name]; return ok }

// get returns attribute name ("" when absent).
func (e *entry) get(name string) string { return e.attrs[name].Value }

// collection reads the children of an IIS collection element whose start
// tag was just read (its own attributes are the caller's): <add> with the
// attributes addAttrs, of which key is required and unique (without
// case, as IIS compares collection keys); <remove key="…"/>; <clear/>. The
// collection starts with the inherited keys (what an earlier section in
// scope left, as IIS merges a <location path="."> with the file's own
// section). It returns the entries left, in order; inherited ones have
// from set.
func (p *parser) collection(parent, key string, inherited []string, addAttrs ...string) ([]entry, error) {
	return p.editCollection(parent, key, inherited, nil, nil, addAttrs...)
}

// editCollection is collection for a list that also edits a server-level
// list the app inherits: a <clear/> sets *cleared and each <remove> key is
// appended to *removed (both nil: not recorded).
func (p *parser) editCollection(parent, key string, inherited []string, cleared *bool, removed *[]string, addAttrs ...string) ([]entry, error) {
	out := make([]entry, 0, len(inherited))
	for i, k := range inherited {
		out = append(out, entry{key: k, from: i + 1})
	}
	err := p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "add":
			attrs, err := p.attrs(t, se, addAttrs...)
			if err != nil {
				return err
			}
			k, ok := attrs[key]
			if !ok {
				return p.errorf(t.line, "add", key, "required attribute is missing (in <%s>)", parent)
			}
			if err := p.unique(t, parent, key, k.Value, out, strings.EqualFold); err != nil {
				return err
			}
			out = append(out, entry{t: t, se: se, attrs: attrs, key: k.Value})
		case "remove":
			attrs, err := p.attrs(t, se, key)
			if err != nil {
				return err
			}
			k, ok := attrs[key]
			if !ok {
				return p.errorf(t.line, "remove", key, "required attribute is missing (in <%s>)", parent)
			}
			out = without(out, k.Value, strings.EqualFold)
			if removed != nil {
				*removed = append(*removed, k.Value)
			}
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			out = out[:0]
			if cleared != nil {
				*cleared = true
			}
		default:
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <%s> (known: add, remove, clear)", parent)
		}
		return p.skip()
	})
	return out, err
}

// unique refuses an <add> whose key is already in out.
func (p *parser) unique(t token, parent, attr, k string, out []entry, eq func(a, b string) bool) error {
	for _, e := range out {
		if !eq(e.key, k) {
			continue
		}
		where := fmt.Sprintf("line %d", e.t.line)
		if e.from > 0 {
			where = "an earlier section in scope"
		}
		return p.errorf(p.attrLine(t, attr), "add", attr, "%q is already in <%s> (%s); IIS refuses duplicate collection entries", k, parent, where)
	}
	return nil
}

// without returns out without the entries whose key is k.
func without(out []entry, k string, eq func(a, b string) bool) []entry {
	kept := out[:0]
	for _, e := range out {
		if !eq(e.key, k) {
			kept = append(kept, e)
		}
	}
	return kept
}

// keysOf returns the keys of a typed collection, for collection.
func keysOf[T any](list []T, key func(T) string) []string {
	keys := make([]string, len(list))
	for i, v := range list {
		keys[i] = key(v)
	}
	return keys
}

// boolAttr parses attribute name of the element at t, if present, into *v.
func (p *parser) boolAttr(t token, se xml.StartElement, attrs map[string]xml.Attr, name string, v *bool) error {
	a, ok := attrs[name]
	if !ok {
		return nil
	}
	b, err := parseBool(a.Value)
	if err != nil {
		return p.errorf(p.attrLine(t, name), se.Name.Local, name, "%q is not true or false", a.Value)
	}
	*v = b
	return nil
}

// uintAttr parses attribute name, if present, as a whole number in
// [0, maxV] into *v.
func (p *parser) uintAttr(t token, se xml.StartElement, attrs map[string]xml.Attr, name string, maxV uint64, v *int64) error {
	a, ok := attrs[name]
	if !ok {
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(a.Value), 10, 64)
	if err != nil || n > maxV {
		return p.errorf(p.attrLine(t, name), se.Name.Local, name, "%q is not a whole number (0–%d)", a.Value, maxV)
	}
	*v = int64(n)
	return nil
}

// oneOf parses attribute name, if present, as one of values (any case),
// setting *v to the spelling in values.
func (p *parser) oneOf(t token, se xml.StartElement, attrs map[string]xml.Attr, name string, v *string, values ...string) error {
	a, ok := attrs[name]
	if !ok {
		return nil
	}
	for _, s := range values {
		if strings.EqualFold(s, strings.TrimSpace(a.Value)) {
			*v = s
			return nil
		}
	}
	return p.errorf(p.attrLine(t, name), se.Name.Local, name, "%q is not one of %s", a.Value, strings.Join(values, ", "))
}

// skipUnsupported records an element that is read but not carried out
// and skips its content.
func (p *parser) skipUnsupported(t token, element, why string) error {
	p.unsupported(t.line, element, why)
	return p.skip()
}

// unsupportedAttr records an attribute that is read but not carried out.
func (p *parser) unsupportedAttr(t token, element, attr, why string) {
	p.unsupported(p.attrLine(t, attr), element+" "+attr, why)
}
