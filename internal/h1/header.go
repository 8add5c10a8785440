package h1

import "strings"

// Header is a request header as a list of fields in the order received.
// It has the method set of pipeline.Header (names match without regard to
// case). The zero value is empty and ready to use.
type Header struct {
	Fields []Field
}

// Get returns the first value of name, or "".
func (h *Header) Get(name string) string {
	for i := range h.Fields {
		if strings.EqualFold(h.Fields[i].Name, name) {
			return h.Fields[i].Value
		}
	}
	return ""
}

// Values calls f for each value of name in order, until f returns false.
func (h *Header) Values(name string, f func(string) bool) {
	for i := range h.Fields {
		if strings.EqualFold(h.Fields[i].Name, name) && !f(h.Fields[i].Value) {
			return
		}
	}
}

// Range calls f for each field in order, until f returns false.
func (h *Header) Range(f func(name, value string) bool) {
	for i := range h.Fields {
		if !f(h.Fields[i].Name, h.Fields[i].Value) {
			return
		}
	}
}

// Set replaces every value of name with value.
func (h *Header) Set(name, value string) {
	h.Del(name)
	h.Add(name, value)
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	h.Fields = append(h.Fields, Field{name, value})
}

// Del removes every field called name.
func (h *Header) Del(name string) {
	out := h.Fields[:0]
	for _, f := range h.Fields {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	clear(h.Fields[len(out):])
	h.Fields = out
}
