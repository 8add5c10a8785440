package webconfig

import (
	"encoding/xml"
	"strings"
)

// noEffect says why a <system.webServer> section that Gatehouse does not
// carry out makes no difference, or what to use instead. Sections not
// listed here are reported as not supported.
var noEffect = map[string]string{
	"modules":                   "has no effect: Gatehouse has no IIS modules to add or remove; it runs the sections it lists",
	"validation":                "has no effect: an IIS integrated-pipeline check",
	"httpCompression":           "not read: IIS allows it only in applicationHost.config; set compression types, levels and minimum size in the site config (compression)",
	"httpLogging":               "not read: use the site config's accessLog",
	"staticContent":             "has no effect: every request goes to the app, which serves its own files",
	"defaultDocument":           "has no effect: every request goes to the app, which serves its own files",
	"directoryBrowse":           "has no effect: every request goes to the app, which serves its own files",
	"applicationInitialization": "not supported: use the handlerSetting startAtBoot and readinessProbe",
	"serverRuntime":             "not supported: request limits are set by <requestFiltering> and the site config",
	"caching":                   "not supported: Gatehouse has no output cache",
	"tracing":                   "not supported: Gatehouse has no failed-request tracing; see its logs",
	"cors":                      "not supported: let the app answer CORS requests",
}

// webServer handles a child of <system.webServer>: the sections Gatehouse
// carries out are parsed; every other element is recorded in
// App.Unsupported with the reason.
func (p *parser) webServer(t token, se xml.StartElement) error {
	switch se.Name.Local {
	case "aspNetCore":
		return p.aspNetCore(t, se)
	case "rewrite":
		return p.rewrite(t, se)
	case "httpRedirect":
		return p.httpRedirect(t, se)
	case "httpErrors":
		return p.httpErrors(t, se)
	case "security":
		return p.security(t, se)
	case "httpProtocol":
		return p.httpProtocol(t, se)
	case "urlCompression":
		return p.urlCompression(t, se)
	case "handlers":
		return p.handlers(t, se)
	case "webSocket":
		return p.webSocket(t, se)
	}
	if why, ok := noEffect[se.Name.Local]; ok {
		return p.skipUnsupported(t, se.Name.Local, why)
	}
	return p.skipUnsupported(t, se.Name.Local, "not supported by Gatehouse")
}

// webSocket handles <webSocket enabled="…" receiveBufferLimit="…"
// pingInterval="…"/>: enabled="false" turns WebSockets off for the app.
func (p *parser) webSocket(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "enabled", "receiveBufferLimit", "pingInterval")
	if err != nil {
		return err
	}
	enabled := true
	if err := p.boolAttr(t, se, attrs, "enabled", &enabled); err != nil {
		return err
	}
	p.app.WebSocketDisabled = !enabled
	for _, a := range []string{"receiveBufferLimit", "pingInterval"} {
		if _, ok := attrs[a]; ok {
			p.unsupportedAttr(t, "webSocket", a, "has no effect: WebSocket frames pass through Gatehouse unchanged; the app sets its own limits and pings")
		}
	}
	if !enabled {
		p.app.Sections = append(p.app.Sections, "webSocket (disabled: Upgrade requests reach the app as plain requests)")
	}
	return p.children(func(t token, se xml.StartElement) error {
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <webSocket> (it has none)")
	})
}

// scopedSecurity handles the children of <security> that a <location
// path> may set too (request filtering, IP restrictions, dynamic IP
// restrictions); ok is false for any other.
func (p *parser) scopedSecurity(t token, se xml.StartElement) (ok bool, err error) {
	switch se.Name.Local {
	case "requestFiltering":
		return true, p.requestFiltering(t, se)
	case "ipSecurity":
		return true, p.ipSecurity(t, se)
	case "dynamicIpSecurity":
		return true, p.dynamicIPSecurity(t, se)
	}
	return false, nil
}

// security handles a child of <system.webServer><security>.
func (p *parser) security(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		if ok, err := p.scopedSecurity(t, se); ok {
			return err
		}
		switch se.Name.Local {
		case "authentication":
			return p.authentication(t, se)
		case "authorization":
			return p.authorization(t, se)
		case "access":
			return p.skipUnsupported(t, "security/access", "not read: ask for client certificates with the binding's clientCertificate in the site config")
		case "isapiCgiRestriction":
			return p.skipUnsupported(t, "security/isapiCgiRestriction", "has no effect: Gatehouse runs no ISAPI or CGI")
		}
		return p.skipUnsupported(t, "security/"+se.Name.Local, "not supported by Gatehouse")
	})
}

// handlers reads <handlers>. The handler mapping to AspNetCoreModule(V2)
// that publishing writes is what Gatehouse does for every request; other
// handlers are reported.
func (p *parser) handlers(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se, "accessPolicy"); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		if se.Name.Local == "add" {
			for _, a := range se.Attr {
				if a.Name.Local == "modules" && strings.HasPrefix(strings.ToLower(a.Value), "aspnetcoremodule") {
					p.applied("handlers", "the "+a.Value+" handler: every request goes to the app")
					return p.skip()
				}
			}
		}
		if se.Name.Local == "remove" || se.Name.Local == "clear" {
			return p.skip() // removing inherited IIS handlers changes nothing here
		}
		return p.skipUnsupported(t, "handlers/"+se.Name.Local, "not supported: every request goes to the app (only the aspNetCore handler is honoured)")
	})
}
