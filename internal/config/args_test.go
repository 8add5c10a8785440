package config

import (
	"reflect"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"blank", " \t ", nil},
		{"published dll", `.\MyApp.dll`, []string{"./MyApp.dll"}},
		{"parent path", `..\bin\Debug\MyApp.dll --x`, []string{"../bin/Debug/MyApp.dll", "--x"}},
		{"other backslashes kept", `C:\x\y.dll sub\dir a\\b`, []string{`C:\x\y.dll`, `sub\dir`, `a\\b`}},
		{"spaces and tabs", "a  b\tc ", []string{"a", "b", "c"}},
		{"line breaks separate", "a\r\n  b", []string{"a", "b"}},
		{"quoted space", `"a b" c`, []string{"a b", "c"}},
		{"quote inside word", `--urls="http://x y"`, []string{"--urls=http://x y"}},
		{"empty quoted", `a "" b`, []string{"a", "", "b"}},
		{"escaped quote", `a\"b`, []string{`a"b`}},
		{"2n backslashes before quote", `"a\\" b`, []string{`a\`, "b"}},
		{"2n+1 backslashes before quote", `"a\\\"b" c`, []string{`a\"b`, "c"}},
		{"trailing backslashes", `a\\`, []string{`a\\`}},
		{"doubled quote in quotes", `"a""b" c`, []string{`a"b c`}},
		{"doubled quote ends quoting", `"a""b c"`, []string{`a"b`, `c`}},
		{"unterminated quote", `"a b`, []string{"a b"}},
		{"quoted published path", `".\My App.dll" --port %ASPNETCORE_PORT%`, []string{"./My App.dll", "--port", "%ASPNETCORE_PORT%"}},
		{"dot alone", `. .\`, []string{".", "./"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SplitArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitArgs(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}
