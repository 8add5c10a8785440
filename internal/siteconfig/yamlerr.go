package siteconfig

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The YAML decoder's messages that name Go types, which mean nothing to
// whoever edits the file: yamlMessage rewrites them. They are compiled on
// first use (an error path), not at every start.
var (
	yamlUnknownField = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	})
	yamlWrongType = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^cannot unmarshal !!(\w+)(?: ` + "`" + `(.*)` + "`" + `)? into (\S+)$`)
	})
)

// yamlMessage rewrites one decoder message of line (0 if unknown) in
// the file's terms: the key, what it wants, and the closest known key for
// an unknown one. root is the document's node tree (nil if unknown).
// Other messages come back as they are.
func yamlMessage(msg string, line int, root *yaml.Node) string {
	if m := yamlUnknownField().FindStringSubmatch(msg); m != nil {
		where, keys := "", []string(nil)
		if t, ok := configTypes()[strings.TrimPrefix(m[2], "siteconfig.")]; ok {
			where, keys = " in "+typeDescription(t), yamlKeys(t)
		}
		return fmt.Sprintf("unknown key %q%s%s", m[1], where, didYouMean(m[1], keys))
	}
	if m := yamlWrongType().FindStringSubmatch(msg); m != nil {
		what := "a value of another kind"
		if t, ok := configTypes()[strings.TrimPrefix(m[3], "siteconfig.")]; ok && t.Kind() == reflect.Struct {
			what = "a mapping (key: value) of " + strings.TrimPrefix(strings.TrimPrefix(typeDescription(t), "a "), "an ") + " settings"
		} else if ok {
			what = typeDescription(t)
		} else if t, ok := basicTypes[m[3]]; ok {
			what = t
		} else if strings.HasPrefix(m[3], "[]") {
			what = "a list"
		} else if strings.HasPrefix(m[3], "map[") {
			what = "a mapping (key: value)"
		}
		got := strconv.Quote(m[2])
		if m[1] == "seq" {
			got = "a list"
		} else if m[1] == "map" {
			got = "a mapping"
		}
		if key := keyAt(root, line, m[1], m[2]); key != "" {
			return fmt.Sprintf("key %q: want %s, got %s", key, what, got)
		}
		return fmt.Sprintf("want %s, got %s", what, got)
	}
	return msg
}

// basicTypes says what a Go type wants, in words.
var basicTypes = map[string]string{
	"int": "a whole number", "int64": "a whole number", "int32": "a whole number", "uint": "a whole number",
	"uint16": "a whole number", "uint32": "a whole number", "uint64": "a whole number",
	"float64": "a number", "bool": "true or false", "string": "text",
	"time.Duration": "a duration such as 30s or 2m",
}

// typeDescription names a config struct for a person: "a site", "an
// application".
func typeDescription(t reflect.Type) string {
	if t.Kind() != reflect.Struct {
		if d, ok := basicTypes[t.String()]; ok {
			return d
		}
		return "a " + strings.ToLower(t.Name())
	}
	words := regexp.MustCompile(`[A-Z][a-z0-9]*`).FindAllString(t.Name(), -1)
	name := strings.ToLower(strings.Join(words, " "))
	if strings.HasSuffix(name, "s") { // timeouts, limits
		return name
	}
	if strings.ContainsRune("aeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// configTypes returns the named types of the config tree by name.
func configTypes() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return
		}
		if _, seen := out[t.Name()]; seen {
			return
		}
		out[t.Name()] = t
		if t.Kind() == reflect.Struct {
			for f := range t.Fields() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	return out
}

// yamlKeys lists the keys a struct takes (inlined structs' too).
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			keys = append(keys, yamlKeys(f.Type)...)
		case name != "":
			keys = append(keys, name)
		default:
			keys = append(keys, strings.ToLower(f.Name))
		}
	}
	slices.Sort(keys)
	return keys
}

// keyAt returns the key whose value on line is of the YAML kind tag
// ("seq", "map", or a scalar's: "str", "int", …) and, for a scalar, is
// value; "" if none is found.
func keyAt(n *yaml.Node, line int, tag, value string) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			v := n.Content[i+1]
			if v.Line != line {
				continue
			}
			if (tag == "seq" && v.Kind == yaml.SequenceNode) || (tag == "map" && v.Kind == yaml.MappingNode) ||
				(v.Kind == yaml.ScalarNode && v.Value == value) {
				return n.Content[i].Value
			}
		}
	}
	for _, c := range n.Content {
		if k := keyAt(c, line, tag, value); k != "" {
			return k
		}
	}
	return ""
}
