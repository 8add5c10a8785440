package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Expand replaces each %NAME% in s with lookup(NAME), as Windows and IIS do
// for expanded attributes. A name lookup does not know is left as written,
// "%NAME%" included, and so is a lone "%". lookup should match names without
// regard to case, as Windows does.
func Expand(s string, lookup func(name string) (string, bool)) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+1 : i+1+j]
		if v, ok := lookup(name); ok && name != "" {
			b.WriteString(s[:i])
			b.WriteString(v)
			s = s[i+j+2:]
			continue
		}
		// Not a variable: keep the first '%' and look again from the second.
		b.WriteString(s[:i+1+j])
		s = s[i+1+j:]
	}
}

// EnvLookup returns a case-insensitive lookup over a KEY=VALUE environment
// list. Where a name appears more than once, the last one wins.
func EnvLookup(env []string) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[strings.ToUpper(k)] = v
		}
	}
	return func(name string) (string, bool) {
		v, ok := m[strings.ToUpper(name)]
		return v, ok
	}
}

// ResolveProgram turns a processPath, already %VAR%-expanded, into the path
// of an executable file on this machine, so that a web.config published on
// Windows runs unchanged:
//   - backslashes become slashes (".\MyApp.exe" → "./MyApp.exe");
//   - a relative path, or a bare name that exists in dir, resolves against
//     dir, as ANCM tries the app folder first;
//   - a bare name is otherwise looked up in pathEnv (the child's PATH);
//   - where "X.exe" does not exist, "X" is tried (a self-contained app
//     published for Linux has no extension; "dotnet.exe" finds "dotnet");
//   - a Windows drive path ("C:\Program Files\dotnet\dotnet.exe") is
//     looked up by its last element, as a bare name.
//
// It returns an error that names the processPath when nothing is found.
func ResolveProgram(dir, processPath, pathEnv string) (string, error) {
	p := strings.TrimSpace(strings.ReplaceAll(processPath, `\`, "/"))
	if p == "" {
		return "", errors.New("processPath is empty")
	}
	if len(p) >= 3 && p[1] == ':' && p[2] == '/' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') {
		p = p[strings.LastIndexByte(p, '/')+1:]
		if p == "" {
			return "", fmt.Errorf("processPath %q names a folder", processPath)
		}
	}
	candidates := []string{p}
	if ext := filepath.Ext(p); strings.EqualFold(ext, ".exe") {
		candidates = append(candidates, strings.TrimSuffix(p, ext))
	}
	bare := !strings.Contains(p, "/")
	var tried []string
	for _, c := range candidates {
		full := c
		if !filepath.IsAbs(c) {
			full = filepath.Join(dir, c)
		}
		if isFile(full) {
			return full, nil
		}
		tried = append(tried, full)
	}
	if bare {
		for _, c := range candidates {
			for _, d := range filepath.SplitList(pathEnv) {
				if d == "" {
					d = "."
				}
				full := filepath.Join(d, c)
				if isExecutable(full) {
					return full, nil
				}
			}
		}
		return "", fmt.Errorf("processPath %q: not found in %s or on PATH", processPath, dir)
	}
	return "", fmt.Errorf("processPath %q: no such file (looked for %s)", processPath, strings.Join(tried, ", "))
}

// LauncherPlaceholders reports an error when processPath or arguments still
// hold %LAUNCHER_PATH% or %LAUNCHER_ARGS%: the web.config of a Visual
// Studio project before publishing, whose placeholders "dotnet publish"
// replaces with the app's program and its arguments.
func LauncherPlaceholders(processPath, arguments string) error {
	for _, f := range []struct{ attr, value, name string }{
		{"processPath", processPath, "%LAUNCHER_PATH%"},
		{"arguments", arguments, "%LAUNCHER_ARGS%"},
	} {
		if strings.Contains(strings.ToUpper(f.value), f.name) {
			return fmt.Errorf("%s %q: %s is a development placeholder of Visual Studio that \"dotnet publish\" replaces "+
				"with the app's program and arguments; deploy the published web.config, or write the program (dotnet MyApp.dll, or ./MyApp) yourself",
				f.attr, f.value, f.name)
		}
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
