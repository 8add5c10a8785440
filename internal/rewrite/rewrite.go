// Package rewrite is the inbound rule engine of the IIS URL Rewrite module
// (and the IIS HTTP Redirection module, in redirect.go), independent of any
// HTTP server type.
//
// Compile turns the <rewrite> section of a web.config (a config.Rewrite) into
// an immutable RuleSet once, at load; Evaluate runs it against an Input (a
// view of one request) and returns an Outcome: the request rewritten to a new
// path and query, a redirect, a custom response, an abort, or nothing.
//
// The semantics follow the IIS URL Rewrite module's configuration reference:
//
//   - The rule pattern sees the URL path, %-decoded, without its leading
//     slash and relative to the app (for an app at /blog, "/blog/a/b" is
//     matched as "a/b"); the query string is not part of it.
//   - patternSyntax ECMAScript (the default) is a .NET-compatible regular
//     expression (github.com/dlclark/regexp2, ECMAScript mode) searched
//     anywhere in the input, Wildcard is a whole-input match where each "*"
//     captures and "?" matches one character without capturing, ExactMatch
//     compares the whole input. ignoreCase defaults to true.
//   - Conditions expand their input ({HTTP_HOST}, {R:1}, {C:1}, …) and test
//     it with a pattern or as a file or directory (IsFile, IsDirectory);
//     MatchAll or MatchAny; {C:n} are the captures of the last condition
//     that captured, or with trackAllCaptures those of every matched
//     condition numbered in order (each condition's whole match included).
//   - Rules run in order; a Rewrite changes the URL the next rule sees.
//     stopProcessing ends the evaluation after a Rewrite or None action;
//     Redirect, CustomResponse and AbortRequest always end it.
//   - Substitution URLs without a leading slash are relative to the app; with
//     one they are site-relative (and may name another virtual app).
//
// Every regular-expression match is bounded by Options.MatchTimeout, so a
// hostile pattern or input cannot stall a request; a timeout is an error
// from Evaluate. Outbound rules on response headers are compiled apart
// (CompileOutbound, outbound.go); those on the response body are not
// supported (the web.config parser reports them).
package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// DefaultMatchTimeout bounds one regular-expression match when
// Options.MatchTimeout is 0. Real rules match in microseconds.
const DefaultMatchTimeout = 100 * time.Millisecond

// Options says where a rule set lives.
type Options struct {
	// AppPath is the virtual path of the app whose web.config holds the rules:
	// "/" (also for "") or "/blog" (no trailing slash). Rule patterns see the
	// URL relative to it, and relative substitution URLs resolve against it.
	// Global (site-level) rules use "/".
	AppPath string
	// Dir is the app folder (absolute). {REQUEST_FILENAME} maps the URL below
	// AppPath into it, and IsFile/IsDirectory conditions test only paths
	// inside it. "" means there is no folder: {REQUEST_FILENAME} is "" and
	// IsFile/IsDirectory never match.
	Dir string
	// MatchTimeout bounds each regular-expression match; 0 means
	// DefaultMatchTimeout. A negative value means no bound (tests only).
	MatchTimeout time.Duration
	// Global marks server-level rules (<globalRules>): they see the whole
	// path (AppPath is "/"), and {REQUEST_FILENAME} maps the path into the
	// folder of the app the request was routed to (Input.AppPath and
	// Input.AppDir) instead of Dir.
	Global bool
	// Upstreams are the other servers ("host:port", lower case) that a
	// Rewrite action may send a request to, as IIS's Application Request
	// Routing does ("http://127.0.0.1:3000/{R:1}"): the site config's
	// proxyUpstreams. A rewrite to any other server is refused.
	Upstreams []string
}

// RuleSet is a compiled <rewrite> section. It is immutable and safe for
// concurrent use; a nil *RuleSet has no rules.
type RuleSet struct {
	rules     []rule
	appPath   string // "/" or "/blog"
	dir       string
	global    bool
	upstreams []string // Options.Upstreams
}

// Error is a rule that cannot be compiled: a bad pattern, an unknown server
// variable, function or map, a back-reference out of range.
type Error struct {
	// File is the file of the rule or map concerned (config.RewriteRule.File),
	// "" if unknown; Line is the line of the element (0 if unknown).
	File string
	Line int
	// Element and Attr name where the problem is ("match", "url").
	Element, Attr string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any.
	Err error
}

// Error formats e as `file:line: element attribute "attr": msg`, the way
// web.config errors read; without a File it starts with "line N".
func (e *Error) Error() string {
	where := fmt.Sprintf("line %d", e.Line)
	switch {
	case e.File != "" && e.Line > 0:
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	case e.File != "":
		where = e.File
	}
	if e.Attr != "" {
		return fmt.Sprintf("%s: %s attribute %q: %s", where, e.Element, e.Attr, e.Msg)
	}
	return fmt.Sprintf("%s: <%s>: %s", where, e.Element, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// inFile sets the File of an *Error err.
func inFile(err error, file string) error {
	if e, ok := errors.AsType[*Error](err); ok && e.File == "" {
		e.File = file
	}
	return err
}

// Compile checks and compiles spec. A nil or empty spec gives a nil
// *RuleSet, which Evaluate treats as having no rules. The first problem
// found is returned as an *Error.
func Compile(spec *config.Rewrite, opts Options) (*RuleSet, error) {
	if spec == nil || len(spec.Rules) == 0 {
		return nil, nil
	}
	c, err := newCompiler(spec, opts)
	if err != nil {
		return nil, err
	}
	rs := &RuleSet{appPath: cleanAppPath(opts.AppPath), dir: opts.Dir, global: opts.Global, upstreams: opts.Upstreams}
	if rs.global {
		rs.appPath, rs.dir = "/", ""
	}
	for i := range spec.Rules {
		r, err := c.rule(&spec.Rules[i])
		if err != nil {
			return nil, inFile(err, spec.Rules[i].File)
		}
		if b := spec.Rules[i].Base; b != "" && !rs.global {
			r.base = strings.TrimSuffix(rs.appPath, "/") + "/" + strings.Trim(b, "/")
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

// Len returns the number of rules in rs.
func (rs *RuleSet) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

func cleanAppPath(p string) string {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	return p
}

// rewriteMap is a compiled <rewriteMap>.
type rewriteMap struct {
	name       string
	entries    map[string]string
	def        string
	ignoreCase bool
}

func (m *rewriteMap) lookup(key string) string {
	if m.ignoreCase {
		key = strings.ToLower(key)
	}
	if v, ok := m.entries[key]; ok {
		return v
	}
	return m.def
}

type compiler struct {
	upstreams []string // Options.Upstreams
	timeout   time.Duration
	budget    *matchBudget           // shared by the rule set's patterns
	maps      map[string]*rewriteMap // by lower-cased name
}

// newCompiler returns the compiler for the rules of spec, with its rewrite
// maps compiled.
func newCompiler(spec *config.Rewrite, opts Options) (*compiler, error) {
	timeout := matchTimeout(opts.MatchTimeout)
	c := &compiler{upstreams: opts.Upstreams, timeout: timeout, budget: newMatchBudget(timeout), maps: map[string]*rewriteMap{}}
	for i := range spec.Maps {
		if err := c.addMap(&spec.Maps[i]); err != nil {
			return nil, inFile(err, spec.Maps[i].File)
		}
	}
	return c, nil
}

func (c *compiler) addMap(m *config.RewriteMap) error {
	key := strings.ToLower(m.Name)
	if m.Name == "" {
		return &Error{Line: m.Line, Element: "rewriteMap", Attr: "name", Msg: "required attribute is missing or empty"}
	}
	if _, dup := c.maps[key]; dup {
		return &Error{Line: m.Line, Element: "rewriteMap", Attr: "name", Msg: fmt.Sprintf("map %q is defined twice (names are case-insensitive)", m.Name)}
	}
	if _, reserved := functions[key]; reserved || key == "r" || key == "c" {
		return &Error{Line: m.Line, Element: "rewriteMap", Attr: "name", Msg: fmt.Sprintf("%q is the name of a built-in function", m.Name)}
	}
	rm := &rewriteMap{name: m.Name, entries: make(map[string]string, len(m.Entries)), def: m.DefaultValue, ignoreCase: m.IgnoreCase}
	for _, e := range m.Entries {
		k := e.Key
		if rm.ignoreCase {
			k = strings.ToLower(k)
		}
		if _, dup := rm.entries[k]; dup {
			return &Error{Line: e.Line, Element: "add", Attr: "key", Msg: fmt.Sprintf("key %q is listed twice in map %q", e.Key, m.Name)}
		}
		rm.entries[k] = e.Value
	}
	c.maps[key] = rm
	return nil
}
