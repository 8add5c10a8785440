package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	lookup := EnvLookup([]string{"HOME=/home/a", "Port=5000", "EMPTY=", "X=1", "x=2", "BAD"})
	tests := []struct{ in, want string }{
		{"", ""},
		{"no vars", "no vars"},
		{"%HOME%/logs", "/home/a/logs"},
		{"%home%", "/home/a"},
		{"--port %ASPNETCORE_PORT% %PORT%", "--port %ASPNETCORE_PORT% 5000"},
		{"%EMPTY%x", "x"},
		{"%X%", "2"},
		{"100%", "100%"},
		{"50% of %HOME%", "50% of /home/a"},
		{"%%", "%%"},
		{"%%HOME%", "%/home/a"},
		{"%HOME%%PORT%", "/home/a5000"},
		{"%UNKNOWN%%HOME%", "%UNKNOWN%/home/a"},
		{"%BAD%", "%BAD%"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, lookup); got != tt.want {
			t.Errorf("Expand(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := t.TempDir()
	write := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "MyApp"), 0o755)
	write(filepath.Join(dir, "sub", "tool.sh"), 0o755)
	write(filepath.Join(dir, "local"), 0o644)
	write(filepath.Join(bin, "dotnet"), 0o755)
	write(filepath.Join(bin, "noexec"), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	pathEnv := strings.Join([]string{filepath.Join(dir, "missing"), bin}, string(filepath.ListSeparator))

	tests := []struct {
		name, processPath, want, wantErr string
	}{
		{"self-contained windows spelling", `.\MyApp.exe`, filepath.Join(dir, "MyApp"), ""},
		{"relative", "./MyApp", filepath.Join(dir, "MyApp"), ""},
		{"nested backslashes", `sub\tool.sh`, filepath.Join(dir, "sub", "tool.sh"), ""},
		{"bare name in app folder", "local", filepath.Join(dir, "local"), ""},
		{"dotnet on PATH", "dotnet", filepath.Join(bin, "dotnet"), ""},
		{"dotnet.exe on PATH", "dotnet.EXE", filepath.Join(bin, "dotnet"), ""},
		{"absolute", filepath.Join(bin, "dotnet"), filepath.Join(bin, "dotnet"), ""},
		{"spaces trimmed", " dotnet ", filepath.Join(bin, "dotnet"), ""},
		{"not executable on PATH", "noexec", "", "not found in"},
		{"directory is not a program", "adir", "", "not found in"},
		{"missing relative", `.\Nope.exe`, "", `processPath ".\\Nope.exe": no such file (looked for ` + filepath.Join(dir, "Nope.exe") + ", " + filepath.Join(dir, "Nope") + ")"},
		{"windows drive path", `C:\Program Files\dotnet\dotnet.exe`, filepath.Join(bin, "dotnet"), ""},
		{"windows drive folder", `C:\Program Files\`, "", "names a folder"},
		{"empty", "  ", "", "processPath is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ResolveProgram(dir, tt.processPath, pathEnv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveProgram(%q) = %q, %v; want error with %q", tt.processPath, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveProgram(%q) = %q, %v; want %q", tt.processPath, got, err, tt.want)
			}
		})
	}
}
