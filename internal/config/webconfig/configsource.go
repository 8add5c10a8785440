package webconfig

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// fromSource reads the element se with read: from the file that its
// configSource attribute names, the way IIS keeps a section in a file of
// its own (<rewriteMaps configSource="rewritemaps.config" />), or in place
// when it has none. The file's root element must be se's, and errors in it
// name that file and its lines. Its path goes to App.Sources, which the
// app watches like web.config.
func (p *parser) fromSource(t token, se xml.StartElement, read func(p *parser, t token, se xml.StartElement) error) error {
	var src string
	found := false
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == "configSource" {
			src, found = a.Value, true
		}
	}
	if !found {
		return read(p, t, se)
	}
	name := se.Name.Local
	line := p.attrLine(t, "configSource")
	if _, err := p.attrs(t, se, "configSource"); err != nil {
		return p.errorf(line, name, "configSource", "with configSource the element takes no other attributes (%v)", err)
	}
	rel := filepath.Clean(strings.ReplaceAll(strings.TrimSpace(src), `\`, "/"))
	if src == "" || filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
		return p.errorf(line, name, "configSource", "%q must be a file in the app folder", src)
	}
	err := p.children(func(t token, se xml.StartElement) error {
		return p.errorf(t.line, se.Name.Local, "", "<%s configSource> must be empty; its content is in %s", name, src)
	})
	if err != nil {
		return err
	}
	abs := filepath.Join(p.dir, rel)
	p.app.Sources = append(p.app.Sources, abs)
	raw, err := os.ReadFile(abs)
	if err != nil {
		return &Error{File: p.file, Line: line, Element: name, Attr: "configSource", Msg: fmt.Sprintf("read %s: %v", src, err), Err: err}
	}
	sub := *p
	sub.file = filepath.Join(filepath.Dir(p.file), rel)
	sub.raw = toUTF8(raw)
	sub.d = xml.NewDecoder(bytes.NewReader(sub.raw))
	sub.d.CharsetReader = charsetReader
	for {
		t, err := sub.next()
		if err == io.EOF {
			return sub.errorf(0, "", "", "no <%s> root element", name)
		}
		if err != nil {
			return err
		}
		root, ok := t.Token.(xml.StartElement)
		if !ok {
			continue
		}
		if root.Name.Local != name {
			return sub.errorf(t.line, root.Name.Local, "", "root element is <%s>, want <%s>", root.Name.Local, name)
		}
		return read(&sub, t, root)
	}
}
