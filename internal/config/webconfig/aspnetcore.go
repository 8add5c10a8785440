package webconfig

import (
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// aspNetCoreAttrs are the attributes of <aspNetCore> in ANCM's schema.
var aspNetCoreAttrs = []string{
	"processPath", "arguments", "startupTimeLimit", "shutdownTimeLimit",
	"rapidFailsPerMinute", "requestTimeout", "stdoutLogEnabled", "stdoutLogFile",
	"forwardWindowsAuthToken", "disableStartUpErrorPage", "processesPerApplication",
	"hostingModel",
}

// aspNetCore reads the <aspNetCore> element whose start tag is t, with its
// children, into p.app. A second <aspNetCore> in scope is an error.
func (p *parser) aspNetCore(t token, se xml.StartElement) error {
	if p.aspNetCoreLine != 0 {
		return p.errorf(t.line, "aspNetCore", "", "second <aspNetCore> element (the first is on line %d)", p.aspNetCoreLine)
	}
	p.aspNetCoreLine = t.line
	attrs, err := p.attrs(t, se, aspNetCoreAttrs...)
	if err != nil {
		return err
	}
	// Walk in schema order so the first error reported is stable.
	for _, name := range aspNetCoreAttrs {
		at, ok := attrs[name]
		if !ok {
			continue
		}
		line := p.attrLine(t, name)
		p.pos[strings.ToLower(name)] = position{line: line, element: "aspNetCore", attr: name}
		p.app.Set[name] = true
		if err := p.setAttr(name, at.Value); err != nil {
			return &Error{File: p.file, Line: line, Element: "aspNetCore", Attr: name, Msg: err.Error(), Err: err}
		}
	}
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "environmentVariables":
			return p.environmentVariables(t, se)
		case "handlerSettings":
			return p.handlerSettings(t, se)
		case "recycleOnFileChange":
			return p.skip() // in the schema, but ANCM never reads it
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <aspNetCore> (known: environmentVariables, handlerSettings, recycleOnFileChange)")
	})
}

// setAttr sets the App field of <aspNetCore> attribute name from v.
func (p *parser) setAttr(name, v string) error {
	a := p.app
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%q "+format, append([]any{v}, args...)...)
	}
	switch name {
	case "processPath":
		a.ProcessPath = v
	case "arguments":
		a.Arguments = v
	case "startupTimeLimit", "shutdownTimeLimit":
		maxD, field := config.MaxStartupTimeLimit, &a.StartupTimeLimit
		if name == "shutdownTimeLimit" {
			maxD, field = config.MaxShutdownTimeLimit, &a.ShutdownTimeLimit
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("is not a whole number of seconds (0–%d)", int(maxD/time.Second))
		}
		*field = time.Duration(n) * time.Second
	case "rapidFailsPerMinute":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("is not a whole number (0–%d)", config.MaxRapidFailsPerMinute)
		}
		a.RapidFailsPerMinute = int(n)
	case "processesPerApplication":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("is not a whole number (1–%d)", config.MaxProcessesPerApplication)
		}
		a.ProcessesPerApplication = int(n)
	case "requestTimeout":
		d, err := config.ParseTimeSpan(v)
		if err != nil {
			return err
		}
		a.RequestTimeout = d
	case "stdoutLogEnabled", "forwardWindowsAuthToken", "disableStartUpErrorPage":
		b, err := parseBool(v)
		if err != nil {
			return bad("is not true or false")
		}
		switch name {
		case "stdoutLogEnabled":
			a.StdoutLogEnabled = b
		case "forwardWindowsAuthToken":
			a.ForwardWindowsAuthToken = b
		default:
			a.DisableStartUpErrorPage = b
		}
	case "stdoutLogFile":
		path, err := p.resolvePath(v)
		if err != nil {
			return err
		}
		a.StdoutLogFile = path
	case "hostingModel":
		a.HostingModel = strings.ToLower(v)
	}
	return nil
}

// parseBool parses an IIS bool: true or false in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("not a bool")
}

// resolvePath turns a path from the file, which may be spelled the Windows
// way (".\logs\stdout", `\\?\%HOME%\LogFiles\stdout`), into an absolute
// path: %VAR% expanded, `\\?\` dropped, backslashes made slashes, relative
// paths joined to the app folder. A Windows drive path (C:\…) is an error.
// "" stays "".
func (p *parser) resolvePath(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	s = strings.TrimPrefix(s, `\\?\`)
	s = config.Expand(s, p.lookup)
	if len(s) >= 2 && s[1] == ':' && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return "", fmt.Errorf("%q is a Windows drive path; use a path relative to the app folder or an absolute Linux path", s)
	}
	s = strings.ReplaceAll(s, `\`, "/")
	if filepath.IsAbs(s) {
		return filepath.Clean(s), nil
	}
	return filepath.Join(p.dir, s), nil
}

func (p *parser) environmentVariables(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			for _, v := range p.app.Env {
				delete(p.pos, "env:"+strings.ToUpper(v.Name))
			}
			p.app.Env = nil
			return p.skip()
		case "environmentVariable":
			attrs, err := p.attrs(t, se, "name", "value")
			if err != nil {
				return err
			}
			name, ok := attrs["name"]
			if !ok {
				return p.errorf(t.line, "environmentVariable", "name", "required attribute is missing")
			}
			line := p.attrLine(t, "name")
			if name.Value == "" {
				return p.errorf(line, "environmentVariable", "name", "must not be empty")
			}
			value, ok := attrs["value"]
			if !ok {
				return p.errorf(t.line, "environmentVariable", "value", "required attribute is missing (for %s)", name.Value)
			}
			key := "env:" + strings.ToUpper(name.Value)
			if prev, dup := p.pos[key]; dup {
				return p.errorf(line, "environmentVariable", "name", "%q is listed twice (first on line %d; names are case-insensitive)", name.Value, prev.line)
			}
			p.pos[key] = position{line: p.attrLine(t, "value"), element: "environmentVariable", attr: "value"}
			p.app.Env = append(p.app.Env, config.EnvVar{Name: name.Value, Value: config.Expand(value.Value, p.lookup)})
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <environmentVariables> (known: environmentVariable, clear)")
	})
}
