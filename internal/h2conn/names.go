package h2conn

import (
	"net/http"
	"strings"
)

// LowerNames holds the lower-case form (HTTP/2's, RFC 9113 §8.2.1) of the
// field names an end commonly sends, by their canonical form, so that
// encoding them allocates nothing.
type LowerNames map[string]string

// NewLowerNames returns the LowerNames of the canonical names given.
func NewLowerNames(canonical ...string) LowerNames {
	m := make(LowerNames, len(canonical))
	for _, k := range canonical {
		m[k] = strings.ToLower(k)
	}
	return m
}

// Lower returns name in lower case, as HTTP/2 sends it: name itself when
// it has no upper-case letter.
func (m LowerNames) Lower(name string) string {
	if l, ok := m[name]; ok {
		return l
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// AddValue adds the value v of field i of a header list to h[k], its
// canonical name. The list's values share vals (as long as the list):
// the first value of a name is vals[i], capped so that an append of a
// second one copies it, so that a header of n fields costs two
// allocations, not one a field.
func AddValue(h http.Header, vals []string, i int, k, v string) {
	if old, dup := h[k]; dup {
		h[k] = append(old, v)
		return
	}
	vals[i] = v
	h[k] = vals[i : i+1 : i+1]
}

// CanonicalNames holds the canonical form (http.Header's) of the field
// names an end commonly receives, by their lower-case form, so that
// decoding them allocates nothing.
type CanonicalNames map[string]string

// NewCanonicalNames returns the CanonicalNames of the canonical names
// given.
func NewCanonicalNames(canonical ...string) CanonicalNames {
	m := make(CanonicalNames, len(canonical))
	for _, k := range canonical {
		m[strings.ToLower(k)] = k
	}
	return m
}

// Canonical returns the canonical form of the lower-case field name, as
// http.CanonicalHeaderKey does.
func (m CanonicalNames) Canonical(name string) string {
	if k, ok := m[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}
