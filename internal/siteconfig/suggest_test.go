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
