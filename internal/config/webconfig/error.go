package webconfig

import (
	"fmt"
	"strings"
)

// Error is a problem with a web.config file: malformed XML, a missing
// <aspNetCore> element, or an attribute or setting with a bad value.
type Error struct {
	// File is the file name as given to Load or Decode.
	File string
	// Line is the 1-based line of the offending element or attribute, or 0
	// when no line applies.
	Line int
	// Element is the XML element ("aspNetCore", "environmentVariable",
	// "handlerSetting"), or "" for an error about the whole file.
	Element string
	// Attr is the attribute name; for Element "handlerSetting" it is the
	// setting's name instead.
	Attr string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any (*xml.SyntaxError,
	// *config.SettingError, an I/O error).
	Err error
}

// Error formats e as `file:line: element attribute "attr": msg`, leaving
// out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	switch {
	case e.Element == "handlerSetting" && e.Attr != "":
		fmt.Fprintf(&b, "handlerSetting %q: ", e.Attr)
	case e.Element != "" && e.Attr != "":
		fmt.Fprintf(&b, "%s attribute %q: ", e.Element, e.Attr)
	case e.Element != "":
		fmt.Fprintf(&b, "<%s>: ", e.Element)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
