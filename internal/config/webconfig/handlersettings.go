package webconfig

import (
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// extension is a Gatehouse handlerSetting that maps to a config.App field.
type extension struct {
	name string // as spelled in config.App's field comments
	set  func(p *parser, a *config.App, v string) error
}

// extensions lists the Gatehouse handlerSettings; see config.App.
var extensions = []extension{
	{"forwardResponseConnectionHeader", boolSetting(func(a *config.App, b bool) { a.ForwardResponseConnectionHeader = b })},
	{"idleTimeout", durationSetting(func(a *config.App, d time.Duration) { a.IdleTimeout = d })},
	{"readinessProbe", func(_ *parser, a *config.App, v string) error { a.ReadinessProbe = v; return nil }},
	{"notifyReady", boolSetting(func(a *config.App, b bool) { a.NotifyReady = b })},
	{"maxQueuedRequests", intSetting(func(a *config.App, n int) { a.MaxQueuedRequests = n })},
	{"retryIdempotentRequests", boolSetting(func(a *config.App, b bool) { a.RetryIdempotentRequests = b })},
	{"drainTimeout", durationSetting(func(a *config.App, d time.Duration) { a.DrainTimeout = d })},
	{"restartMarker", func(p *parser, a *config.App, v string) error {
		path, err := p.resolvePath(v)
		a.RestartMarker = path
		return err
	}},
	{"stdoutLogMaxSize", func(_ *parser, a *config.App, v string) error {
		n, err := config.ParseSize(v)
		a.StdoutLogMaxSize = n
		return err
	}},
	{"stdoutLogMaxFiles", intSetting(func(a *config.App, n int) { a.StdoutLogMaxFiles = n })},
	{"socketActivation", boolSetting(func(a *config.App, b bool) { a.SocketActivation = b })},
	{"startAtBoot", boolSetting(func(a *config.App, b bool) { a.StartAtBoot = b })},
	{"shutdownEvent", func(_ *parser, a *config.App, v string) error {
		if strings.EqualFold(strings.TrimSpace(v), "auto") {
			a.ShutdownEvent = nil
			return nil
		}
		b, err := parseBool(v)
		if err != nil {
			return errors.New(strconv.Quote(v) + " is not true, false or auto")
		}
		a.ShutdownEvent = &b
		return nil
	}},
	{"protocol", func(_ *parser, a *config.App, v string) error { a.Protocol = v; return nil }},
	{"grpcWeb", boolSetting(func(a *config.App, b bool) { a.GRPCWeb = b })},
}

// ancmHandlerSettings are the handlerSetting names ANCM V2 reads (its
// debug log, handler version, console redirection, shadow copy, shutdown
// delay and in-process settings); they are accepted, and only those in
// extensions change what Gatehouse does (docs/web-config.md).
var ancmHandlerSettings = []string{
	"debugFile", "debugLevel", "handlerVersion", "enableOutOfProcessConsoleRedirection",
	"forwardResponseConnectionHeader", "enableShadowCopy", "experimentalEnableShadowCopy",
	"shadowCopyDirectory", "cleanShadowCopyDirectory", "disallowRotationOnConfigChange",
	"shutdownDelay", "stackSize", "setCurrentDirectory", "callStartupHook",
}

// knownHandlerSetting reports whether key (lower case) is an ANCM or a
// Gatehouse handlerSetting: a misspelt name must not be accepted silently.
func knownHandlerSetting(key string) bool {
	for _, n := range ancmHandlerSettings {
		if strings.ToLower(n) == key {
			return true
		}
	}
	for _, x := range extensions {
		if strings.ToLower(x.name) == key {
			return true
		}
	}
	return false
}

// suggestHandlerSetting returns ` (did you mean "x"?)` for the known name
// closest to key, when it is close enough to be a typo.
func suggestHandlerSetting(key string) string {
	best, dist := "", 4
	consider := func(n string) {
		if d := config.EditDistance(key, strings.ToLower(n)); d < dist {
			best, dist = n, d
		}
	}
	for _, n := range ancmHandlerSettings {
		consider(n)
	}
	for _, x := range extensions {
		consider(x.name)
	}
	if best == "" {
		return " (see \"handlerSettings\" in docs/web-config.md)"
	}
	return " (did you mean " + strconv.Quote(best) + "?)"
}

func boolSetting(f func(*config.App, bool)) func(*parser, *config.App, string) error {
	return func(_ *parser, a *config.App, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return errors.New(strconv.Quote(v) + " is not true or false")
		}
		f(a, b)
		return nil
	}
}

func durationSetting(f func(*config.App, time.Duration)) func(*parser, *config.App, string) error {
	return func(_ *parser, a *config.App, v string) error {
		d, err := config.ParseDuration(v)
		if err != nil {
			return err
		}
		f(a, d)
		return nil
	}
}

func intSetting(f func(*config.App, int)) func(*parser, *config.App, string) error {
	return func(_ *parser, a *config.App, v string) error {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return errors.New(strconv.Quote(v) + " is not a whole number")
		}
		f(a, int(n))
		return nil
	}
}

func (p *parser) handlerSettings(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	err := p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			for k := range p.app.HandlerSettings {
				delete(p.pos, k)
			}
			clear(p.app.HandlerSettings)
			return p.skip()
		case "handlerSetting":
			attrs, err := p.attrs(t, se, "name", "value")
			if err != nil {
				return err
			}
			name, ok := attrs["name"]
			if !ok {
				return p.errorf(t.line, "handlerSetting", "name", "required attribute is missing")
			}
			line := p.attrLine(t, "name")
			if name.Value == "" {
				return p.errorf(line, "handlerSetting", "name", "must not be empty")
			}
			value, ok := attrs["value"]
			if !ok {
				return p.errorf(t.line, "handlerSetting", name.Value, "required attribute \"value\" is missing")
			}
			key := strings.ToLower(name.Value)
			if !knownHandlerSetting(key) {
				return p.errorf(line, "handlerSetting", name.Value, "unknown name%s", suggestHandlerSetting(key))
			}
			if prev, dup := p.pos[key]; dup {
				return p.errorf(line, "handlerSetting", name.Value, "listed twice (first on line %d; names are case-insensitive)", prev.line)
			}
			p.pos[key] = position{line: line, element: "handlerSetting", attr: name.Value}
			p.app.HandlerSettings[key] = value.Value
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <handlerSettings> (known: handlerSetting, clear)")
	})
	if err != nil {
		return err
	}
	return p.applyExtensions()
}

// applyExtensions maps the Gatehouse handlerSettings read so far to App
// fields and marks them in App.Set.
func (p *parser) applyExtensions() error {
	for _, x := range extensions {
		key := strings.ToLower(x.name)
		v, ok := p.app.HandlerSettings[key]
		if !ok {
			continue
		}
		if err := x.set(p, p.app, v); err != nil {
			pos := p.pos[key]
			return &Error{File: p.file, Line: pos.line, Element: "handlerSetting", Attr: pos.attr, Msg: err.Error(), Err: err}
		}
		p.app.Set[x.name] = true
	}
	return nil
}

// locate turns the *config.SettingError values in err (from App.Validate)
// into *Error values with the line where the setting was written.
func (p *parser) locate(err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		se, ok := errors.AsType[*config.SettingError](e)
		if !ok {
			out = append(out, &Error{File: p.file, Msg: e.Error(), Err: e})
			continue
		}
		we := &Error{File: p.file, Msg: se.Msg, Err: se}
		switch {
		case se.Name == "environmentVariable":
			pos := p.pos["env:"+strings.ToUpper(se.Var)]
			we.Line, we.Element, we.Attr = pos.line, "environmentVariable", "value"
			we.Msg = se.Var + ": " + se.Msg
		case se.Name == "dir":
			we.Msg = se.Error()
		default:
			pos, ok := p.pos[strings.ToLower(se.Name)]
			if !ok {
				pos = position{line: p.aspNetCoreLine, element: "aspNetCore", attr: se.Name}
			}
			we.Line, we.Element, we.Attr = pos.line, pos.element, pos.attr
		}
		out = append(out, we)
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}
