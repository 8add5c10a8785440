package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessLogW3CFields: the W3C log has IIS's default fields in IIS's
// order unless the fields are chosen (as IIS's logExtFileFlags), and
// GoAccess's W3C format reads the default log whole: every request valid,
// time-taken in place.
func TestAccessLogW3CFields(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	logs := t.TempDir()
	def, custom := filepath.Join(logs, "default.log"), filepath.Join(logs, "custom.log")
	g := start(t, dir, "serve", "--access-log", def, dir)
	g.mustGet("/pid")
	g.mustGet("/sleep?d=300ms")
	g.get("/nosuch?q=1", "User-Agent", "Test Agent/1.0")
	g.stop(30 * time.Second) // closes the log
	g2 := start(t, dir, "serve", "--access-log", custom, "--access-log-fields", "TimeTaken, BytesSent, Host, Date, Time, HttpStatus", dir)
	g2.mustGet("/pid")
	g2.stop(30 * time.Second)

	fieldsOf := func(path string) (string, []string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var fields string
		var rows []string
		for line := range strings.Lines(string(b)) {
			line = strings.TrimRight(line, "\r\n")
			if rest, ok := strings.CutPrefix(line, "#Fields: "); ok {
				fields = rest
			} else if !strings.HasPrefix(line, "#") {
				rows = append(rows, line)
			}
		}
		return fields, rows
	}
	const iisDefault = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
	if f, rows := fieldsOf(def); f != iisDefault || len(rows) != 3 {
		t.Errorf("default log: #Fields %q and %d rows, want IIS's default %q and 3", f, len(rows), iisDefault)
	}
	f, rows := fieldsOf(custom)
	if want := "date time cs-host sc-status sc-bytes time-taken"; f != want || len(rows) != 1 || len(strings.Fields(rows[0])) != 6 {
		t.Errorf("chosen fields: #Fields %q, rows %q; want %q (IIS's order) and one row of 6", f, rows, want)
	}

	goaccess, err := exec.LookPath("goaccess")
	if err != nil {
		t.Skip("goaccess is not installed (Debian package goaccess): the log was not read by GoAccess")
	}
	report := filepath.Join(logs, "report.json")
	if out, err := exec.Command(goaccess, def, "--log-format=W3C", "-o", report).CombinedOutput(); err != nil {
		t.Fatalf("goaccess: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		General struct {
			Total  int `json:"total_requests"`
			Valid  int `json:"valid_requests"`
			Failed int `json:"failed_requests"`
		} `json:"general"`
		Requests struct {
			Data []struct {
				Data  string `json:"data"`
				AvgTS int64  `json:"avgts"` // microseconds
			} `json:"data"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("goaccess report: %v\n%s", err, b)
	}
	if r.General.Total != 3 || r.General.Valid != 3 || r.General.Failed != 0 {
		t.Errorf("goaccess read %d requests, %d valid, %d failed; want 3, 3, 0", r.General.Total, r.General.Valid, r.General.Failed)
	}
	slept := false
	for _, d := range r.Requests.Data {
		if strings.HasPrefix(d.Data, "/sleep") {
			slept = d.AvgTS >= 300_000
			if !slept {
				t.Errorf("goaccess: /sleep took %d µs, want at least 300 ms (time-taken)", d.AvgTS)
			}
		}
	}
	if !slept {
		t.Errorf("goaccess found no /sleep request: %s", b)
	}
}
