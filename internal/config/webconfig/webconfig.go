// Package webconfig reads the settings of an app from its IIS web.config,
// as `dotnet publish` writes it, into a config.App.
//
// It reads <configuration><system.webServer>, also inside <location
// path="."> (or path=""): <aspNetCore> with its <environmentVariables> and
// <handlerSettings>, and the sections of the IIS modules that stay active
// beside ANCM (see webserver.go). Every other child of <system.webServer>
// is recorded in App.Unsupported with the reason, never silently dropped;
// elements outside <system.webServer> are not read. A <location
// path="sub"> is read for the sections that apply to part of an app
// (authentication, authorization, httpRedirect, and request filtering and
// custom headers merged onto the app's: location.go); its other sections
// are recorded in App.Unsupported. Attribute names are matched case-sensitively and an unknown
// attribute or element inside a section read is an error, as IIS's schema
// validation makes it. Every error is an *Error naming the file and line.
package webconfig

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/config"
)

// maxFileSize bounds what Decode reads; real web.config files are a few KB.
const maxFileSize = 4 << 20

// Load reads the web.config at path. The app's Dir is the absolute folder of
// path, File its absolute path; errors name path as given.
func Load(path string) (*config.App, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error(), Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("open: %v", err), Err: err}
	}
	defer f.Close()
	app, err := Decode(f, path, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	app.File = abs
	return app, nil
}

// Decode reads a web.config from r. file names it in errors and becomes
// App.File; dir is the app folder (absolute) that relative paths resolve
// against. %VAR% in environmentVariable values and stdoutLogFile is
// expanded against os.Environ(); processPath and arguments are kept as
// written, with Args set to config.SplitArgs(Arguments).
//
// The result has passed App.Validate; its errors are reported as *Error with
// the line of the attribute concerned. More than one problem is reported as
// errors.Join of *Error values.
func Decode(r io.Reader, file, dir string) (*config.App, error) {
	return decode(r, file, dir, os.Environ())
}

func decode(r io.Reader, file, dir string, environ []string) (*config.App, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("read: %v", err), Err: err}
	}
	if len(raw) > maxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}
	}
	p := &parser{
		file:   file,
		dir:    dir,
		raw:    toUTF8(raw),
		lookup: config.EnvLookup(environ),
		app:    config.Default(dir),
		pos:    map[string]position{},
	}
	p.app.File = file
	if err := p.parse(); err != nil {
		return nil, err
	}
	if err := p.readLocations(); err != nil {
		return nil, err
	}
	p.app.Args = config.SplitArgs(p.app.Arguments)
	if err := p.app.Validate(); err != nil {
		return nil, p.locate(err)
	}
	return p.app, nil
}

// toUTF8 drops a UTF-8 byte-order mark and converts UTF-16 text with a
// byte-order mark (as some Windows editors save web.config) to UTF-8.
func toUTF8(b []byte) []byte {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:]
	case len(b) >= 2 && (b[0] == 0xFF && b[1] == 0xFE || b[0] == 0xFE && b[1] == 0xFF):
		le := b[0] == 0xFF
		b = b[2:]
		u := make([]uint16, len(b)/2)
		for i := range u {
			if le {
				u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
		}
		out := make([]byte, 0, len(u))
		for _, r := range utf16.Decode(u) {
			out = utf8.AppendRune(out, r)
		}
		return out
	}
	return b
}
