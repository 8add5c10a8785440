package webconfig

import (
	"encoding/xml"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"golang.org/x/net/http/httpguts"
)

// httpProtocol reads <httpProtocol> (customHeaders, redirectHeaders) into
// p.app.CustomHeaders.
func (p *parser) httpProtocol(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "allowKeepAlive")
	if err != nil {
		return err
	}
	if _, ok := attrs["allowKeepAlive"]; ok {
		p.unsupportedAttr(t, "httpProtocol", "allowKeepAlive", "not supported: keep-alive follows the site config's idle timeout")
	}
	ch := p.app.CustomHeaders
	if ch == nil {
		ch = &config.CustomHeaders{}
		p.app.CustomHeaders = ch
	}
	err = p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "customHeaders":
			return p.headerFields(t, se, &ch.Headers)
		case "redirectHeaders":
			return p.headerFields(t, se, &ch.Redirect)
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <httpProtocol> (known: customHeaders, redirectHeaders)")
	})
	if err != nil {
		return err
	}
	p.applied("httpProtocol", ch.Summary())
	return nil
}

// headerFields reads a <customHeaders> or <redirectHeaders> collection.
func (p *parser) headerFields(t token, se xml.StartElement, out *[]config.HeaderField) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	parent := se.Name.Local
	old := *out
	entries, err := p.collection(parent, "name", keysOf(old, func(f config.HeaderField) string { return f.Name }), "name", "value")
	if err != nil {
		return err
	}
	*out = nil
	for _, e := range entries {
		if e.from > 0 {
			*out = append(*out, old[e.from-1])
			continue
		}
		name := strings.TrimSpace(e.key)
		if !httpguts.ValidHeaderFieldName(name) {
			return p.errorf(p.attrLine(e.t, "name"), "add", "name", "%q is not a header name", e.key)
		}
		if !httpguts.ValidHeaderFieldValue(e.get("value")) {
			return p.errorf(p.attrLine(e.t, "value"), "add", "value", "the value of %s has a control character", name)
		}
		*out = append(*out, config.HeaderField{Name: name, Value: e.get("value")}) // sent as written
	}
	return nil
}

// urlCompression reads <urlCompression> into p.app.URLCompression.
func (p *parser) urlCompression(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "doStaticCompression", "doDynamicCompression", "dynamicCompressionBeforeCache")
	if err != nil {
		return err
	}
	uc := &config.URLCompression{DoDynamicCompression: true, DoStaticCompression: true}
	if prev := p.app.URLCompression; prev != nil {
		c := *prev // an earlier section in scope: what this one does not write stays
		uc = &c
	}
	if err := p.boolAttr(t, se, attrs, "doDynamicCompression", &uc.DoDynamicCompression); err != nil {
		return err
	}
	if err := p.boolAttr(t, se, attrs, "doStaticCompression", &uc.DoStaticCompression); err != nil {
		return err
	}
	var before bool
	if err := p.boolAttr(t, se, attrs, "dynamicCompressionBeforeCache", &before); err != nil {
		return err
	}
	if _, ok := attrs["doStaticCompression"]; ok {
		p.unsupportedAttr(t, "urlCompression", "doStaticCompression", "has no effect: every response comes from the app, so only doDynamicCompression applies")
	}
	p.app.URLCompression = uc
	if err := p.children(func(t token, se xml.StartElement) error {
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <urlCompression> (it has none)")
	}); err != nil {
		return err
	}
	if uc.DoDynamicCompression {
		p.applied("urlCompression", "dynamic compression on, types and levels from the site config")
	} else {
		p.applied("urlCompression", "dynamic compression off")
	}
	return nil
}
