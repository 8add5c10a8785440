package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadGlobalRules: the global rules file is read and compiled; a rule
// that does not compile is an error naming the file and line, and a file
// without rules gives no stage.
func TestLoadGlobalRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, rules string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		doc := "<configuration><system.webServer><rewrite><globalRules>\n" + rules + "</globalRules></rewrite></system.webServer></configuration>"
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.config", `<rule name="a"><match url="^old/(.*)" /><action type="Redirect" url="/new/{R:1}" /></rule>`)
	rw, _, st, err := loadGlobalRules(good)
	if err != nil || len(rw.Rules) != 1 || st == nil {
		t.Errorf("good rules: %v, %+v, stage %v", err, rw, st)
	}
	if _, _, st, err := loadGlobalRules(write("empty.config", "")); err != nil || st != nil {
		t.Errorf("no rules: %v, stage %v; want no stage", err, st)
	}
	bad := write("bad.config", `<rule name="a"><match url="[" /></rule>`)
	if _, _, _, err := loadGlobalRules(bad); err == nil || !strings.HasPrefix(err.Error(), bad+`:2: match attribute "url": "[" is not a valid regular expression`) {
		t.Errorf("bad pattern: %v", err)
	}
}

// TestCheckCompilesRules: gatehouse check refuses a web.config whose URL
// Rewrite rules do not compile, naming the file and line (exit 3).
func TestCheckCompilesRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "web.config")
	doc := `<configuration><system.webServer><aspNetCore processPath="sh" />
<rewrite><rules><rule name="a"><match url=".*" />
<action type="Rewrite" url="{Nope:{R:1}}" /></rule></rules></rewrite></system.webServer></configuration>`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	err := cmdCheck([]string{dir}, io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitConfig || !strings.Contains(err.Error(), file+`:3: action attribute "url": {Nope:…}: no such function or rewrite map`) {
		t.Errorf("check: %v, want exit %d naming %s:3", err, exitConfig, file)
	}
}
