package webconfig

import (
	"encoding/xml"
	"math"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// requestFiltering reads <security><requestFiltering> into
// p.app.RequestFiltering. A second one in scope (the file and a <location
// path=".">) adds to the first, as IIS merges them.
func (p *parser) requestFiltering(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "allowDoubleEscaping", "allowHighBitCharacters", "unescapeQueryString", "removeServerHeader")
	if err != nil {
		return err
	}
	rf := p.app.RequestFiltering
	if rf == nil {
		rf = &config.RequestFiltering{
			AllowHighBitCharacters: true,
			UnescapeQueryString:    true,
			FileExtensions:         config.FileExtensions{AllowUnlisted: true},
			Verbs:                  config.Verbs{AllowUnlisted: true},
		}
		p.app.RequestFiltering = rf
	}
	for _, b := range []struct {
		name string
		v    *bool
	}{{"allowDoubleEscaping", &rf.AllowDoubleEscaping}, {"allowHighBitCharacters", &rf.AllowHighBitCharacters},
		{"unescapeQueryString", &rf.UnescapeQueryString}, {"removeServerHeader", &rf.RemoveServerHeader}} {
		if err := p.boolAttr(t, se, attrs, b.name, b.v); err != nil {
			return err
		}
	}
	err = p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "requestLimits":
			return p.requestLimits(t, se, &rf.Limits)
		case "fileExtensions":
			return p.fileExtensions(t, se, &rf.FileExtensions, &rf.ServerEdits)
		case "verbs":
			return p.verbs(t, se, &rf.Verbs)
		case "hiddenSegments":
			return p.hiddenSegments(t, se, &rf.HiddenSegments, &rf.ServerEdits)
		case "denyUrlSequences":
			return p.sequences(t, se, "sequence", &rf.DenyURLSequences)
		case "denyQueryStringSequences":
			return p.sequences(t, se, "sequence", &rf.DenyQueryStringSequences)
		case "alwaysAllowedUrls", "alwaysAllowedQueryStrings", "filteringRules":
			return p.skipUnsupported(t, "requestFiltering/"+se.Name.Local, "not supported: NOT applied (the other requestFiltering rules are)")
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <requestFiltering> (known: requestLimits, fileExtensions, verbs, hiddenSegments, denyUrlSequences, denyQueryStringSequences, alwaysAllowedUrls, alwaysAllowedQueryStrings, filteringRules)")
	})
	if err != nil {
		return err
	}
	p.applied("requestFiltering", rf.Summary())
	return nil
}

// requestLimits reads <requestLimits> with its <headerLimits>.
func (p *parser) requestLimits(t token, se xml.StartElement, lim *config.RequestLimits) error {
	attrs, err := p.attrs(t, se, "maxAllowedContentLength", "maxUrl", "maxQueryString")
	if err != nil {
		return err
	}
	body, url, query := lim.MaxAllowedContentLength, int64(lim.MaxURL), int64(lim.MaxQueryString)
	if err := p.uintAttr(t, se, attrs, "maxAllowedContentLength", math.MaxUint32, &body); err != nil {
		return err
	}
	if err := p.uintAttr(t, se, attrs, "maxUrl", math.MaxUint32, &url); err != nil {
		return err
	}
	if err := p.uintAttr(t, se, attrs, "maxQueryString", math.MaxUint32, &query); err != nil {
		return err
	}
	lim.MaxAllowedContentLength, lim.MaxURL, lim.MaxQueryString = body, int(url), int(query)
	return p.children(func(t token, se xml.StartElement) error {
		if se.Name.Local != "headerLimits" {
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <requestLimits> (known: headerLimits)")
		}
		if _, err := p.attrs(t, se); err != nil {
			return err
		}
		old := lim.HeaderLimits
		entries, err := p.collection("headerLimits", "header", keysOf(old, func(h config.HeaderLimit) string { return h.Header }), "header", "sizeLimit")
		if err != nil {
			return err
		}
		lim.HeaderLimits = nil
		for _, e := range entries {
			if e.from > 0 {
				lim.HeaderLimits = append(lim.HeaderLimits, old[e.from-1])
				continue
			}
			var n int64
			if err := p.uintAttr(e.t, e.se, e.attrs, "sizeLimit", math.MaxUint32, &n); err != nil {
				return err
			}
			if !e.has("sizeLimit") {
				return p.errorf(e.t.line, "add", "sizeLimit", "required attribute is missing (header %s)", e.key)
			}
			lim.HeaderLimits = append(lim.HeaderLimits, config.HeaderLimit{Header: e.key, SizeLimit: int(n)})
		}
		return nil
	})
}

// fileExtensions reads <fileExtensions>, recording in edits what it does
// to the server's list.
func (p *parser) fileExtensions(t token, se xml.StartElement, fe *config.FileExtensions, edits *config.ServerEdits) error {
	attrs, err := p.attrs(t, se, "allowUnlisted", "applyToWebDAV")
	if err != nil {
		return err
	}
	if err := p.boolAttr(t, se, attrs, "allowUnlisted", &fe.AllowUnlisted); err != nil {
		return err
	}
	old := fe.Rules
	entries, err := p.editCollection("fileExtensions", "fileExtension", keysOf(old, func(r config.ExtensionRule) string { return r.Extension }),
		&edits.ClearExtensions, &edits.RemovedExtensions, "fileExtension", "allowed")
	if err != nil {
		return err
	}
	fe.Rules = nil
	for _, e := range entries {
		if e.from > 0 {
			fe.Rules = append(fe.Rules, old[e.from-1])
			continue
		}
		ext := strings.ToLower(strings.TrimSpace(e.key))
		if !strings.HasPrefix(ext, ".") {
			return p.errorf(p.attrLine(e.t, "fileExtension"), "add", "fileExtension", "%q must start with a dot, as in \".exe\"", e.key)
		}
		allowed := true
		if err := p.boolAttr(e.t, e.se, e.attrs, "allowed", &allowed); err != nil {
			return err
		}
		fe.Rules = append(fe.Rules, config.ExtensionRule{Extension: ext, Allowed: allowed})
	}
	return nil
}

// verbs reads <verbs>.
func (p *parser) verbs(t token, se xml.StartElement, v *config.Verbs) error {
	attrs, err := p.attrs(t, se, "allowUnlisted", "applyToWebDAV")
	if err != nil {
		return err
	}
	if err := p.boolAttr(t, se, attrs, "allowUnlisted", &v.AllowUnlisted); err != nil {
		return err
	}
	old := v.Rules
	entries, err := p.collection("verbs", "verb", keysOf(old, func(r config.VerbRule) string { return r.Verb }), "verb", "allowed")
	if err != nil {
		return err
	}
	v.Rules = nil
	for _, e := range entries {
		if e.from > 0 {
			v.Rules = append(v.Rules, old[e.from-1])
			continue
		}
		verb := strings.TrimSpace(e.key)
		if verb == "" || strings.ContainsAny(verb, " \t,") {
			return p.errorf(p.attrLine(e.t, "verb"), "add", "verb", "%q is not an HTTP method", e.key)
		}
		allowed := true
		if err := p.boolAttr(e.t, e.se, e.attrs, "allowed", &allowed); err != nil {
			return err
		}
		v.Rules = append(v.Rules, config.VerbRule{Verb: verb, Allowed: allowed})
	}
	return nil
}

// hiddenSegments reads <hiddenSegments>, recording in edits what it does
// to the server's list.
func (p *parser) hiddenSegments(t token, se xml.StartElement, out *[]string, edits *config.ServerEdits) error {
	if _, err := p.attrs(t, se, "applyToWebDAV"); err != nil {
		return err
	}
	return p.stringList(se.Name.Local, "segment", out, &edits.ClearHidden, &edits.RemovedHidden)
}

// sequences reads a collection of strings keyed by attribute key
// (<denyUrlSequences>, <denyQueryStringSequences>).
func (p *parser) sequences(t token, se xml.StartElement, key string, out *[]string) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	return p.stringList(se.Name.Local, key, out, nil, nil)
}

// stringList reads the entries of a collection of strings keyed by attribute
// key; cleared and removed as for editCollection.
func (p *parser) stringList(parent, key string, out *[]string, cleared *bool, removed *[]string) error {
	old := *out
	entries, err := p.editCollection(parent, key, old, cleared, removed, key)
	if err != nil {
		return err
	}
	*out = nil
	for _, e := range entries {
		if e.from > 0 {
			*out = append(*out, old[e.from-1])
			continue
		}
		if e.key == "" {
			return p.errorf(p.attrLine(e.t, key), "add", key, "must not be empty (in <%s>)", parent)
		}
		if parent == "hiddenSegments" && strings.Contains(e.key, "/") {
			return p.errorf(p.attrLine(e.t, key), "add", key, "%q is not one path segment", e.key)
		}
		*out = append(*out, e.key)
	}
	return nil
}
