package config

import "strings"

// SplitArgs splits an arguments attribute into arguments the way Windows
// CommandLineToArgvW splits everything after the program name:
//   - spaces and tabs separate arguments outside double quotes (so do CR and
//     LF, which Windows would keep; an attribute value spread over lines
//     means separate arguments);
//   - a double quote starts or ends a quoted part, and "" inside a quoted
//     part is one literal quote (the rule CommandLineToArgvW has always had);
//   - 2n backslashes before a quote become n backslashes and the quote
//     quotes; 2n+1 become n backslashes and a literal quote; backslashes not
//     before a quote are kept as written.
//
// Then each argument starting with `.\` or `..\`, a path relative to the app
// folder as `dotnet publish` writes it, has every `\` turned into `/`
// (`.\MyApp.dll` → `./MyApp.dll`). Other arguments are left alone.
//
// %VAR% is not expanded. SplitArgs returns nil for a blank s.
func SplitArgs(s string) []string {
	var args []string
	for len(s) > 0 {
		if isArgSpace(s[0]) {
			s = s[1:]
			continue
		}
		var arg string
		arg, s = nextArg(s)
		if strings.HasPrefix(arg, `.\`) || strings.HasPrefix(arg, `..\`) {
			arg = strings.ReplaceAll(arg, `\`, "/")
		}
		args = append(args, arg)
	}
	return args
}

func isArgSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// nextArg reads one argument from the start of s, which is not blank, and
// returns it with the rest of s.
func nextArg(s string) (arg, rest string) {
	var b strings.Builder
	inQuote := false
	slashes := 0
	for ; len(s) > 0; s = s[1:] {
		c := s[0]
		switch {
		case c == '\\':
			slashes++
			continue
		case c == '"':
			b.WriteString(strings.Repeat(`\`, slashes/2))
			if slashes%2 == 1 {
				b.WriteByte('"')
			} else {
				if inQuote && len(s) > 1 && s[1] == '"' {
					b.WriteByte('"')
					s = s[1:]
				}
				inQuote = !inQuote
			}
			slashes = 0
			continue
		case isArgSpace(c) && !inQuote:
			b.WriteString(strings.Repeat(`\`, slashes))
			return b.String(), s[1:]
		}
		b.WriteString(strings.Repeat(`\`, slashes))
		slashes = 0
		b.WriteByte(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	return b.String(), ""
}

// WindowsPaths returns the arguments that are Windows absolute paths
// (`D:\sites\shop\Shop.dll`, `\\server\share\x`): a web.config written
// for one Windows machine, whose paths do not exist here.
func WindowsPaths(args []string) []string {
	var out []string
	for _, a := range args {
		drive := len(a) >= 3 && a[1] == ':' && (a[2] == '\\' || a[2] == '/') && ('a' <= a[0]|0x20 && a[0]|0x20 <= 'z')
		if drive || strings.HasPrefix(a, `\\`) {
			out = append(out, a)
		}
	}
	return out
}
