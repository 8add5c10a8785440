package siteconfig

import (
	"strings"
	"testing"
)

// TestSelectW3CFields: IIS's default fields when none are chosen, chosen
// ones in IIS's column order whatever the list's, and an unknown one named
// with the closest known.
func TestSelectW3CFields(t *testing.T) {
	t.Parallel()
	names := func(fs []W3CField) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return strings.Join(out, " ")
	}
	def, err := SelectW3CFields("")
	if want := "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"; err != nil || names(def) != want {
		t.Errorf("default = %q, %v; want %q", names(def), err, want)
	}
	got, err := SelectW3CFields("timetaken, BytesRecv,BytesSent , Date")
	if want := "date sc-bytes cs-bytes time-taken"; err != nil || names(got) != want {
		t.Errorf("chosen = %q, %v; want %q", names(got), err, want)
	}
	if _, err := SelectW3CFields("Date, BytesSnt"); err == nil || !strings.Contains(err.Error(), `did you mean "BytesSent"`) {
		t.Errorf("unknown field: %v, want a did-you-mean for BytesSent", err)
	}
}

// TestAccessLogFieldsInvalid: a wrong accessLog.fields is a config error
// with file:line.
func TestAccessLogFieldsInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Parse([]byte("sites:\n  - name: a\n    bindings: [{scheme: http, port: 8080}]\n    accessLog: {path: a.log, fields: \"Date, Tme\"}\n"), dir+"/gh.yaml")
	if err == nil || !strings.Contains(err.Error(), "gh.yaml:2") || !strings.Contains(err.Error(), `did you mean "Time"`) {
		t.Errorf("err = %v, want file:line and a did-you-mean", err)
	}
}

// TestYAMLErrorsInFileTerms: a wrong key or value is reported with
// file:line, the key, what it wants and the closest known key, never a Go
// type.
func TestYAMLErrorsInFileTerms(t *testing.T) {
	t.Parallel()
	const head = "sites:\n  - name: a\n"
	tests := []struct{ name, yaml, want string }{
		{"misspelt key", head + "    bindngs: [{scheme: http, port: 8080}]\n", `gh.yaml:3: unknown key "bindngs" in a site (did you mean "bindings"?)`},
		{"number", head + "    bindings: [{scheme: http, port: abc}]\n", `gh.yaml:3: key "port": want a whole number, got "abc"`},
		{"duration", "timeouts:\n  idle: 5x\n", `gh.yaml:2: key "idle": want a duration such as 30s or 2m, got "5x"`},
		{"list for a mapping", head + "    accessLog: [1, 2]\n", `gh.yaml:3: key "accessLog": want a mapping (key: value) of access log settings, got a list`},
		{"scalar for a list", "sites: foo\n", `gh.yaml:1: key "sites": want a list, got "foo"`},
		{"unknown section", "timeout:\n  idle: 5s\n", `gh.yaml:1: unknown key "timeout" in a config (did you mean "timeouts"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), t.TempDir()+"/gh.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %s", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "siteconfig.") || strings.Contains(err.Error(), "!!")) {
				t.Errorf("err names a Go type or YAML tag: %v", err)
			}
		})
	}
}
