package webconfig

import (
	"strings"
	"testing"
)

// TestShutdownEventSetting: handlerSetting shutdownEvent takes true, false
// or auto (nil); anything else is an error.
func TestShutdownEventSetting(t *testing.T) {
	t.Parallel()
	doc := func(v string) string {
		return `<configuration><system.webServer><aspNetCore processPath="node"><handlerSettings>` +
			`<handlerSetting name="shutdownEvent" value="` + v + `"/></handlerSettings></aspNetCore></system.webServer></configuration>`
	}
	for v, want := range map[string]string{"true": "true", "False": "false", "auto": "nil"} {
		a, err := Decode(strings.NewReader(doc(v)), "web.config", t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got := "nil"
		if a.ShutdownEvent != nil {
			got = map[bool]string{true: "true", false: "false"}[*a.ShutdownEvent]
		}
		if got != want {
			t.Errorf("shutdownEvent=%q: %s, want %s", v, got, want)
		}
	}
	if _, err := Decode(strings.NewReader(doc("sometimes")), "web.config", t.TempDir()); err == nil || !strings.Contains(err.Error(), "true, false or auto") {
		t.Errorf("shutdownEvent=sometimes: %v, want an error", err)
	}
}
