package webconfig

import (
	"encoding/xml"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// httpErrorsAttrs are the attributes of <httpErrors> in IIS's schema.
// detailedMoreInformationLink belongs to IIS's detailed page, which
// Gatehouse does not write; allowAbsolutePathsWhenDelegated has no effect:
// a File page outside the app's folder is always refused.
var httpErrorsAttrs = []string{
	"errorMode", "existingResponse", "defaultResponseMode", "defaultPath",
	"detailedMoreInformationLink", "allowAbsolutePathsWhenDelegated",
}

// errorModes are the values of errorMode, by lower-cased spelling (IIS
// reads enumeration values without regard to case).
var errorModes = map[string]config.ErrorMode{
	"detailedlocalonly": config.ErrorModeDetailedLocalOnly,
	"detailed":          config.ErrorModeDetailed,
	"custom":            config.ErrorModeCustom,
}

// responseModes are the values of responseMode and defaultResponseMode.
var responseModes = []string{"File", "ExecuteURL", "Redirect"}

// httpErrors reads <system.webServer><httpErrors> whose start tag is t:
// errorMode, and the custom error pages (existingResponse, defaultPath,
// <error>, <remove>, <clear/>). A section read after another in scope
// (<location path=".">) edits what the earlier one left.
func (p *parser) httpErrors(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, httpErrorsAttrs...)
	if err != nil {
		return err
	}
	if at, ok := attrs["errorMode"]; ok {
		line := p.attrLine(t, "errorMode")
		mode, ok := errorModes[strings.ToLower(strings.TrimSpace(at.Value))]
		if !ok {
			return p.errorf(line, "httpErrors", "errorMode", "unknown error mode %q (known: DetailedLocalOnly, Detailed, Custom)", at.Value)
		}
		p.app.ErrorMode = mode
		p.app.Set["errorMode"] = true
	}
	he := &config.HTTPErrors{ExistingResponse: "Auto", Default: config.ErrorPage{Mode: "File"}}
	if prev := p.app.HTTPErrors; prev != nil {
		c := *prev
		c.Pages = append([]config.ErrorPage(nil), prev.Pages...)
		he = &c
	}
	if err := p.oneOf(t, se, attrs, "existingResponse", &he.ExistingResponse, "Auto", "Replace", "PassThrough"); err != nil {
		return err
	}
	if err := p.oneOf(t, se, attrs, "defaultResponseMode", &he.Default.Mode, responseModes...); err != nil {
		return err
	}
	if at, ok := attrs["defaultPath"]; ok {
		he.Default.Line = p.attrLine(t, "defaultPath")
		if he.Default.Path, err = p.errorPath(he.Default.Line, "httpErrors", "defaultPath", he.Default.Mode, at.Value); err != nil {
			return err
		}
	}
	err = p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "error":
			pg, err := p.errorElement(t, se)
			if err != nil {
				return err
			}
			for _, q := range he.Pages {
				if q.Status == pg.Status && q.Substatus == pg.Substatus {
					return p.errorf(t.line, "error", "statusCode", "%s is already in <httpErrors> (line %d); IIS refuses duplicate collection entries", pageCode(pg), q.Line)
				}
			}
			he.Pages = append(he.Pages, pg)
		case "remove":
			attrs, err := p.attrs(t, se, "statusCode", "subStatusCode")
			if err != nil {
				return err
			}
			status, sub, err := p.statusAttrs(t, se, attrs)
			if err != nil {
				return err
			}
			kept := he.Pages[:0]
			for _, q := range he.Pages {
				if q.Status != status || q.Substatus != sub {
					kept = append(kept, q)
				}
			}
			he.Pages = kept
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			he.Pages = he.Pages[:0]
		default:
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <httpErrors> (known: error, remove, clear)")
		}
		return p.skip()
	})
	if err != nil {
		return err
	}
	p.app.HTTPErrors = he
	p.applied("httpErrors", "existingResponse "+he.ExistingResponse+", "+strconv.Itoa(len(he.Pages))+" custom error pages")
	return nil
}

// errorElement reads one <error> of <httpErrors>.
func (p *parser) errorElement(t token, se xml.StartElement) (config.ErrorPage, error) {
	attrs, err := p.attrs(t, se, "statusCode", "subStatusCode", "path", "responseMode", "prefixLanguageFilePath")
	if err != nil {
		return config.ErrorPage{}, err
	}
	pg := config.ErrorPage{Mode: "File", Line: t.line}
	if pg.Status, pg.Substatus, err = p.statusAttrs(t, se, attrs); err != nil {
		return pg, err
	}
	if err := p.oneOf(t, se, attrs, "responseMode", &pg.Mode, responseModes...); err != nil {
		return pg, err
	}
	at, ok := attrs["path"]
	if !ok {
		return pg, p.errorf(t.line, "error", "path", "required attribute is missing")
	}
	if pg.Path, err = p.errorPath(p.attrLine(t, "path"), "error", "path", pg.Mode, at.Value); err != nil {
		return pg, err
	}
	if v := attrs["prefixLanguageFilePath"].Value; v != "" {
		p.unsupportedAttr(t, "error", "prefixLanguageFilePath", "not carried out: the page is read from path in the app's folder, without a language folder")
	}
	return pg, nil
}

// statusAttrs reads statusCode (required, 400–999) and subStatusCode
// (default -1: any).
func (p *parser) statusAttrs(t token, se xml.StartElement, attrs map[string]xml.Attr) (status, sub int, err error) {
	at, ok := attrs["statusCode"]
	if !ok {
		return 0, 0, p.errorf(t.line, se.Name.Local, "statusCode", "required attribute is missing")
	}
	status, err = strconv.Atoi(strings.TrimSpace(at.Value))
	if err != nil || status < 400 || status > 999 {
		return 0, 0, p.errorf(p.attrLine(t, "statusCode"), se.Name.Local, "statusCode", "%q is not an error status (400–999)", at.Value)
	}
	sub = -1
	if at, ok := attrs["subStatusCode"]; ok {
		sub, err = strconv.Atoi(strings.TrimSpace(at.Value))
		if err != nil || sub < -1 || sub > 999 {
			return 0, 0, p.errorf(p.attrLine(t, "subStatusCode"), se.Name.Local, "subStatusCode", "%q is not a sub-status (-1–999)", at.Value)
		}
	}
	return status, sub, nil
}

// errorPath checks the path of a custom error page for its mode. A File
// path must name a file inside the app's folder: written with '\' or '/',
// relative to the folder or absolute within it, never with a ".."
// segment. An ExecuteURL path is a URL path of the site ("/errors/404");
// a Redirect path is sent as written.
func (p *parser) errorPath(line int, element, attr, mode, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", p.errorf(line, element, attr, "the path is empty")
	}
	switch mode {
	case "ExecuteURL":
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
			return "", p.errorf(line, element, attr, "%q is not a URL path of the site: ExecuteURL takes one such as /errors/404", v)
		}
		return v, nil
	case "Redirect":
		return v, nil
	}
	s := strings.ReplaceAll(v, `\`, "/")
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return "", p.errorf(line, element, attr, "%q leaves the app's folder: a File page must be inside it", v)
		}
	}
	if len(s) >= 2 && s[1] == ':' || strings.HasPrefix(s, "//") || strings.Contains(s, "%") {
		return "", p.errorf(line, element, attr, "%q is not a path inside the app's folder (%s): a File page must be inside it", v, p.dir)
	}
	if strings.HasPrefix(s, "/") {
		rel, err := filepath.Rel(p.dir, filepath.FromSlash(s))
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", p.errorf(line, element, attr, "%q is outside the app's folder (%s): a File page must be inside it", v, p.dir)
		}
		s = filepath.ToSlash(rel)
	}
	s = path.Clean(s)
	if s == "." {
		return "", p.errorf(line, element, attr, "%q names the app's folder, not a file", v)
	}
	return s, nil
}

// pageCode is an <error>'s status as IIS writes it ("404", "404.7").
func pageCode(pg config.ErrorPage) string {
	if pg.Substatus < 0 {
		return strconv.Itoa(pg.Status)
	}
	return strconv.Itoa(pg.Status) + "." + strconv.Itoa(pg.Substatus)
}
