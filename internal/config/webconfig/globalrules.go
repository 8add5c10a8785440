package webconfig

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/config"
)

// LoadGlobalRules reads the URL Rewrite global rules that the site config's
// globalRules names: a file in the shape of IIS's applicationHost.config,
// <configuration><system.webServer><rewrite> with <globalRules> and
// <rewriteMaps> (other sections and elements of the file are skipped).
// Every error is an *Error with the file and line. The rules are checked
// as written here; their patterns, server variables and functions are
// checked where they are compiled (package rewrite), whose errors also name
// the file and line. unsupported names the elements read but not carried
// out (<outboundRules>, <providers>, <serverVariables>).
func LoadGlobalRules(path string) (rw *config.Rewrite, unsupported []string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &Error{File: path, Msg: fmt.Sprintf("read: %v", err), Err: err}
	}
	if len(raw) > maxFileSize {
		return nil, nil, &Error{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}
	}
	dir := filepath.Dir(path)
	p := &parser{file: path, dir: dir, raw: toUTF8(raw), app: config.Default(dir), pos: map[string]position{}}
	p.app.Rewrite = &config.Rewrite{}
	if err := p.parseGlobal(); err != nil {
		return nil, nil, err
	}
	return p.app.Rewrite, p.app.Unsupported, nil
}

// parseGlobal walks <configuration><system.webServer><rewrite>.
func (p *parser) parseGlobal() error {
	p.d = xml.NewDecoder(bytes.NewReader(p.raw))
	p.d.CharsetReader = charsetReader
	for {
		t, err := p.next()
		if err == io.EOF {
			return p.errorf(0, "", "", "no <configuration> root element")
		}
		if err != nil {
			return err
		}
		se, ok := t.Token.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != "configuration" {
			return p.errorf(t.line, se.Name.Local, "", "root element is <%s>, want <configuration>", se.Name.Local)
		}
		return p.children(func(t token, se xml.StartElement) error {
			if se.Name.Local != "system.webServer" {
				return p.skip()
			}
			return p.children(func(t token, se xml.StartElement) error {
				if se.Name.Local != "rewrite" {
					return p.skip()
				}
				return p.globalRewrite(t, se)
			})
		})
	}
}

// globalRewrite reads a server-level <rewrite>.
func (p *parser) globalRewrite(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	rw := p.app.Rewrite
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "globalRules":
			return p.fromSource(t, se, func(p *parser, t token, se xml.StartElement) error { return p.rewriteRules(t, se, &rw.Rules) })
		case "rewriteMaps":
			return p.fromSource(t, se, func(p *parser, t token, se xml.StartElement) error { return p.rewriteMaps(t, se, &rw.Maps) })
		case "outboundRules", "providers", "allowedServerVariables":
			p.unsupported(t.line, se.Name.Local, "URL Rewrite "+se.Name.Local+" are not supported yet; the global rules apply")
			return p.skip()
		case "rules":
			return p.errorf(t.line, "rules", "", "distributed rules belong in an app's web.config; this file holds <globalRules>")
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <rewrite> (known: globalRules, rewriteMaps, outboundRules, providers, allowedServerVariables)")
	})
}
