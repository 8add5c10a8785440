package webconfig

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/config"
)

// parser walks the XML tokens of one web.config and fills app.
type parser struct {
	file, dir string
	raw       []byte
	lookup    func(string) (string, bool)
	app       *config.App

	d *xml.Decoder
	// pos maps each setting read to where it was written, for errors found
	// later: lower-cased attribute or handlerSetting names, and "env:" +
	// upper-cased variable names.
	pos map[string]position
	// aspNetCoreLine is the line of the <aspNetCore> element read, 0 if none.
	aspNetCoreLine int
	// loc is the <location> being read: path "" (and line 0) for the
	// file's own level and <location path=".">.
	loc struct {
		path string
		line int
	}
	// only, when set, is the <location path> this parser re-reads alone
	// (readLocations); nothing else of the file is read.
	only string
	// scoped are the <location path="sub"> elements with sections that
	// readLocations reads on top of the app's (request filtering, custom
	// headers).
	scoped []position
	// rewriteRead is set once a <rewrite> was read.
	rewriteRead bool
}

type position struct {
	line    int
	element string
	attr    string
}

// token is an XML token with the offset and line where it starts.
type token struct {
	xml.Token
	off, line int
}

func (p *parser) errorf(line int, element, attr, format string, args ...any) *Error {
	return &Error{File: p.file, Line: line, Element: element, Attr: attr, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) next() (token, error) {
	off := int(p.d.InputOffset())
	line, _ := p.d.InputPos()
	t, err := p.d.Token()
	if err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return token{}, &Error{File: p.file, Line: se.Line, Msg: "malformed XML: " + se.Msg, Err: err}
		}
		if err == io.EOF {
			return token{}, err
		}
		return token{}, &Error{File: p.file, Line: line, Msg: "malformed XML: " + err.Error(), Err: err}
	}
	return token{Token: t, off: off, line: line}, nil
}

// skip skips the rest of the element whose start tag was just read.
func (p *parser) skip() error {
	for depth := 1; depth > 0; {
		t, err := p.next()
		if err != nil {
			return p.eof(err)
		}
		switch t.Token.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// eof turns io.EOF inside an element into an error.
func (p *parser) eof(err error) error {
	if err == io.EOF {
		line, _ := p.d.InputPos()
		return p.errorf(line, "", "", "malformed XML: unexpected end of file")
	}
	return err
}

// children calls f for each child element of the element whose start tag
// was just read, until its end tag. f must consume the child's content
// (p.skip or its own loop).
func (p *parser) children(f func(t token, se xml.StartElement) error) error {
	for {
		t, err := p.next()
		if err != nil {
			return p.eof(err)
		}
		switch x := t.Token.(type) {
		case xml.StartElement:
			if err := f(t, x); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

func (p *parser) parse() error {
	p.d = xml.NewDecoder(bytes.NewReader(p.raw))
	p.d.CharsetReader = charsetReader
	root := false
	for {
		t, err := p.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if cd, ok := t.Token.(xml.CharData); ok && len(bytes.TrimSpace(cd)) > 0 {
			lead := cd[:len(cd)-len(bytes.TrimLeft(cd, " \t\r\n"))]
			return p.errorf(t.line+bytes.Count(lead, []byte("\n")), "", "", "malformed XML: text outside the root element")
		}
		se, ok := t.Token.(xml.StartElement)
		if !ok {
			continue
		}
		if root {
			return p.errorf(t.line, "", "", "malformed XML: more than one root element")
		}
		root = true
		if se.Name.Local != "configuration" {
			return p.errorf(t.line, se.Name.Local, "", "root element is <%s>, want <configuration>", se.Name.Local)
		}
		if err := p.children(p.section); err != nil {
			return err
		}
	}
	if !root {
		line, _ := p.d.InputPos()
		return p.errorf(line, "", "", "malformed XML: no root element")
	}
	if p.aspNetCoreLine == 0 && p.only == "" {
		return p.errorf(0, "", "", "no <aspNetCore> element in <configuration><system.webServer> (or in <location path=\".\">)")
	}
	return nil
}

// section handles a child of <configuration> or of <location>.
func (p *parser) section(t token, se xml.StartElement) error {
	switch se.Name.Local {
	case "location":
		if p.loc.path != "" {
			return p.errorf(t.line, "location", "", "<location> inside <location> is not allowed")
		}
		raw := "."
		for _, a := range se.Attr {
			if a.Name.Space == "" && a.Name.Local == "path" {
				raw = a.Value
			}
		}
		sub, bad := locationPath(raw)
		if bad != "" {
			return p.errorf(p.attrLine(t, "path"), "location", "path", "%q %s", raw, bad)
		}
		if p.only != "" && !strings.EqualFold(sub, p.only) {
			return p.skip()
		}
		if sub == "" {
			return p.children(p.section)
		}
		// A sub-path location narrows the security sections to that path;
		// the app-wide sections (<aspNetCore>) are not read there.
		p.loc.path, p.loc.line = sub, t.line
		defer func() { p.loc.path, p.loc.line = "", 0 }()
		return p.children(p.section)
	case "system.webServer":
		switch {
		case p.only != "" && p.loc.path == "":
			return p.skip()
		case p.only != "":
			return p.children(p.scopedWebServer)
		case p.loc.path != "":
			return p.children(p.subWebServer)
		}
		return p.children(p.webServer)
	}
	return p.skip()
}

// attrLine returns the line of attribute name in the start tag at t.
func (p *parser) attrLine(t token, name string) int {
	end := min(int(p.d.InputOffset()), len(p.raw))
	if t.off >= end {
		return t.line // offsets of a re-encoded (latin1) stream
	}
	tag := p.raw[t.off:end]
	for i := 0; ; {
		j := bytes.Index(tag[i:], []byte(name))
		if j < 0 {
			return t.line
		}
		k := i + j
		after := bytes.TrimLeft(tag[k+len(name):], " \t\r\n")
		if k > 0 && isXMLSpace(tag[k-1]) && len(after) > 0 && after[0] == '=' {
			return t.line + bytes.Count(tag[:k], []byte("\n"))
		}
		i = k + len(name)
	}
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// attrs returns the unprefixed attributes of se by name. It rejects names
// not in allowed and names given twice. Prefixed attributes (xdt:Transform)
// and namespace declarations are ignored.
func (p *parser) attrs(t token, se xml.StartElement, allowed ...string) (map[string]xml.Attr, error) {
	m := make(map[string]xml.Attr, len(se.Attr))
	for _, a := range se.Attr {
		if a.Name.Space != "" || a.Name.Local == "xmlns" {
			continue
		}
		name := a.Name.Local
		line := p.attrLine(t, name)
		found := false
		for _, n := range allowed {
			found = found || n == name
		}
		if !found {
			return nil, p.errorf(line, se.Name.Local, name, "unknown attribute (names are case-sensitive; known: %s)", strings.Join(allowed, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, p.errorf(line, se.Name.Local, name, "attribute given twice")
		}
		m[name] = a
	}
	return m, nil
}

// charsetReader accepts the encodings a web.config declares besides UTF-8.
// UTF-16 files were already converted by toUTF8, so they pass through.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-16", "utf-16le", "utf-16be", "unicode", "us-ascii", "ascii":
		return r, nil
	case "iso-8859-1", "latin1", "windows-1252":
		return latin1Reader{bufio.NewReader(r)}, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q (save the file as UTF-8)", label)
}

// latin1Reader turns ISO-8859-1 bytes into UTF-8.
type latin1Reader struct{ r io.ByteReader }

func (l latin1Reader) Read(b []byte) (int, error) {
	n := 0
	for n+utf8.UTFMax <= len(b) {
		c, err := l.r.ReadByte()
		if err != nil {
			return n, err
		}
		n += utf8.EncodeRune(b[n:], rune(c))
	}
	if n == 0 && len(b) > 0 {
		return 0, io.ErrShortBuffer
	}
	return n, nil
}
