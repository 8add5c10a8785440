package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestLoggerLimitsFloods: the logger serve builds sums up a flood of one
// line and lets app output through.
func TestLoggerLimitsFloods(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		f := &serveFlags{logFormat: format, logLevel: "info"}
		log, err := f.logger(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			log.Info("request refused", "path", "/x")
		}
		for range 100 {
			log.Info("GET / 200", "stream", "stdout")
		}
		out := buf.String()
		if n := strings.Count(out, "request refused"); n != 20 {
			t.Errorf("%s: %d request-refused lines, want the first 20", format, n)
		}
		if n := strings.Count(out, "GET / 200"); n != 100 {
			t.Errorf("%s: %d of 100 app output lines", format, n)
		}
	}
}
