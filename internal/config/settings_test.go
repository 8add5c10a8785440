package config

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWriteSettings(t *testing.T) {
	t.Parallel()
	a := Default("/srv/app")
	a.File = "/srv/app/web.config"
	a.ProcessPath, a.Set["processPath"] = "dotnet", true
	a.StartupTimeLimit, a.Set["startupTimeLimit"] = 30*time.Second, true
	a.IdleTimeout, a.Set["idleTimeout"] = 15*time.Minute, true
	a.Protocol, a.Set["protocol"] = ProtocolH2C, true
	a.HandlerSettings["debuglevel"] = "FILE"
	a.Arguments, a.Args = `.\my app.dll x`, []string{"./my app.dll", "x"}
	a.Env = []EnvVar{
		{"ASPNETCORE_ENVIRONMENT", "Staging"},
		{"Db__Password", "hunter2"},
		{"API_KEY", "k"},
		{"my_secret_x", "s"},
		{"ASPNETCORE_TOKEN", "t"},
		{"EMPTY", ""},
	}
	var b strings.Builder
	if err := a.WriteSettings(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, re := range []string{
		`(?m)^processPath +dotnet +\(web\.config\)$`,
		`(?m)^arguments +\.\\my app\.dll x +\(default\)$`,
		`(?m)^  split +"\./my app\.dll" "x"$`,
		`(?m)^startupTimeLimit +30s +\(web\.config\)$`,
		`(?m)^shutdownTimeLimit +10s +\(default\)$`,
		`(?m)^requestTimeout +00:02:00 +\(default\)$`,
		`(?m)^stdoutLogFile +/srv/app/aspnetcore-stdout +\(default\)$`,
		`(?m)^hostingModel +outofprocess +\(default\)$`,
		`(?m)^errorMode +DetailedLocalOnly +\(default\)$`,
		`(?m)^idleTimeout +900s +\(web\.config\)$`,
		`(?m)^drainTimeout +10s +\(default\)$`,
		`(?m)^protocol +h2c +\(web\.config\)$`,
		`(?m)^handlerSetting debuglevel +FILE +\(web\.config\)$`,
		`(?m)^env ASPNETCORE_ENVIRONMENT +Staging +\(web\.config\)$`,
		`(?m)^env Db__Password +\*+ +\(web\.config\)$`,
		`(?m)^env EMPTY +"" +\(web\.config\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	for _, secret := range []string{"hunter2", "=k", " k ", " s ", " t "} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows secret %q:\n%s", secret, out)
		}
	}
	// Columns are aligned: every value column starts at the same offset.
	col := -1
	for line := range strings.Lines(out) {
		if strings.TrimRight(line, " \n") != strings.TrimSuffix(line, "\n") {
			t.Errorf("trailing spaces: %q", line)
		}
		i := strings.Index(line[1:], "  ") + 1
		j := i + len(line[i:]) - len(strings.TrimLeft(line[i:], " "))
		if col == -1 {
			col = j
		} else if j != col {
			t.Errorf("value column at %d, want %d: %q", j, col, line)
		}
	}
}

func TestWriteSettingsCommandLine(t *testing.T) {
	t.Parallel()
	a := Default("/srv/app")
	a.ProcessPath, a.Set["processPath"] = "./app", true
	var b strings.Builder
	if err := a.WriteSettings(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(command line)") {
		t.Errorf("no command line source:\n%s", b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteSettingsError(t *testing.T) {
	t.Parallel()
	if err := Default("/a").WriteSettings(failWriter{}); err == nil {
		t.Error("no error from a failing writer")
	}
}

func TestIsSecretName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"ASPNETCORE_TOKEN": true, "db_password": true, "ClientSecret": true, "API_KEY": true,
		"KEYCLOAK_URL": true, "ConnectionStrings__Db": true, "PATH": false, "ASPNETCORE_ENVIRONMENT": false,
	} {
		if got := IsSecretName(name); got != want {
			t.Errorf("IsSecretName(%q) = %v", name, got)
		}
	}
}
