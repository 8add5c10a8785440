package webconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gatehouse/gatehouse/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// testEnv is the environment %VAR% expands against in these tests.
var testEnv = []string{"GATEHOUSE_TEST_USER=alice", "HOME=/home/alice", "ASPNETCORE_PORT=1"}

// goldenJSON renders app for a golden file: durations as Go strings, dir
// replaced by $DIR, nil pointers and empty slices (sections the file
// lacks) left out.
func goldenJSON(t *testing.T, app *config.App, dir string) []byte {
	t.Helper()
	m := map[string]any{}
	v := reflect.ValueOf(app).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Tag.Get("json") == "-" {
			continue // not from the file
		}
		switch fv := v.Field(i); fv.Kind() {
		case reflect.Pointer, reflect.Slice:
			if fv.IsNil() || fv.Kind() == reflect.Slice && fv.Len() == 0 {
				continue
			}
		}
		if d, ok := v.Field(i).Interface().(time.Duration); ok {
			m[f.Name] = d.String()
		} else {
			m[f.Name] = v.Field(i).Interface()
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.ReplaceAll(b, []byte(dir), []byte("$DIR")), '\n')
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.web.config")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".web.config")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, err := filepath.Abs("testdata")
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			app, err := decode(f, file, dir, testEnv)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			got := goldenJSON(t, app, dir)
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run go test -update and review the diff):\n%s", file, golden, got)
			}
		})
	}
}

// TestPublishedFrameworkDependent spells out what the golden file holds for
// the web.config `dotnet publish` writes.
func TestPublishedFrameworkDependent(t *testing.T) {
	t.Parallel()
	app, err := Load("testdata/framework-dependent.web.config")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if app.Dir != dir || app.File != filepath.Join(dir, "framework-dependent.web.config") {
		t.Errorf("Dir, File = %q, %q; want %q and the file in it", app.Dir, app.File, dir)
	}
	if app.ProcessPath != "dotnet" || !reflect.DeepEqual(app.Args, []string{"./MyApp.dll"}) {
		t.Errorf("ProcessPath, Args = %q, %q", app.ProcessPath, app.Args)
	}
	if app.StdoutLogFile != filepath.Join(dir, "logs/stdout") || app.StdoutLogEnabled {
		t.Errorf("StdoutLogFile, Enabled = %q, %v", app.StdoutLogFile, app.StdoutLogEnabled)
	}
	if app.HostingModel != "inprocess" || app.StartupTimeLimit != 120*time.Second || app.DrainTimeout != 10*time.Second {
		t.Errorf("HostingModel, StartupTimeLimit, DrainTimeout = %q, %v, %v", app.HostingModel, app.StartupTimeLimit, app.DrainTimeout)
	}
	if !app.Set["processPath"] || app.Set["startupTimeLimit"] {
		t.Errorf("Set = %v", app.Set)
	}
}

func TestDecodeDetails(t *testing.T) {
	t.Parallel()
	const dir = "/srv/app"
	tests := []struct {
		name  string
		inner string // inside <system.webServer>
		check func(t *testing.T, a *config.App)
	}{
		{"drain follows shutdownTimeLimit", `<aspNetCore processPath="a" shutdownTimeLimit="33"/>`, func(t *testing.T, a *config.App) {
			if a.DrainTimeout != 33*time.Second {
				t.Errorf("DrainTimeout = %v", a.DrainTimeout)
			}
		}},
		{"explicit drain kept", `<aspNetCore processPath="a" shutdownTimeLimit="33"><handlerSettings><handlerSetting name="DRAINTIMEOUT" value="7"/></handlerSettings></aspNetCore>`, func(t *testing.T, a *config.App) {
			if a.DrainTimeout != 7*time.Second || a.HandlerSettings["draintimeout"] != "7" {
				t.Errorf("DrainTimeout = %v, HandlerSettings = %v", a.DrainTimeout, a.HandlerSettings)
			}
		}},
		{"rapid fails clamped", `<aspNetCore processPath="a" rapidFailsPerMinute="1000"/>`, func(t *testing.T, a *config.App) {
			if a.RapidFailsPerMinute != 100 {
				t.Errorf("RapidFailsPerMinute = %d", a.RapidFailsPerMinute)
			}
		}},
		{"timespan hh:mm", `<aspNetCore processPath="a" requestTimeout="360:00"/>`, func(t *testing.T, a *config.App) {
			if a.RequestTimeout != 360*time.Hour {
				t.Errorf("RequestTimeout = %v", a.RequestTimeout)
			}
		}},
		{"azure log path", `<aspNetCore processPath="a" stdoutLogFile="\\?\%home%\LogFiles\stdout"/>`, func(t *testing.T, a *config.App) {
			if a.StdoutLogFile != "/home/alice/LogFiles/stdout" {
				t.Errorf("StdoutLogFile = %q", a.StdoutLogFile)
			}
		}},
		{"fixed port kept", `<aspNetCore processPath="a"><environmentVariables><environmentVariable name="aspnetcore_port" value="5000"/></environmentVariables></aspNetCore>`, func(t *testing.T, a *config.App) {
			if a.FixedPort() != 5000 {
				t.Errorf("FixedPort = %d", a.FixedPort())
			}
		}},
		{"errorMode default", `<aspNetCore processPath="a"/>`, func(t *testing.T, a *config.App) {
			if a.ErrorMode != "" || a.ErrorMode.ShowDetails(false) || !a.ErrorMode.ShowDetails(true) {
				t.Errorf("ErrorMode = %q", a.ErrorMode)
			}
		}},
		{"errorMode Custom", `<httpErrors errorMode="Custom" existingResponse="Replace"><remove statusCode="404"/><error statusCode="404" path="/404.htm" responseMode="ExecuteURL"/></httpErrors><aspNetCore processPath="a"/>`, func(t *testing.T, a *config.App) {
			if a.ErrorMode != config.ErrorModeCustom || a.ErrorMode.ShowDetails(true) || !a.Set["errorMode"] {
				t.Errorf("ErrorMode = %q", a.ErrorMode)
			}
		}},
		{"errorMode detailed, any case", `<aspNetCore processPath="a"/><httpErrors errorMode="detailed"/>`, func(t *testing.T, a *config.App) {
			if a.ErrorMode != config.ErrorModeDetailed || !a.ErrorMode.ShowDetails(false) {
				t.Errorf("ErrorMode = %q", a.ErrorMode)
			}
		}},
		{"errorMode in location", `</system.webServer><location path="."><system.webServer><httpErrors errorMode="DetailedLocalOnly"/></system.webServer></location><system.webServer><aspNetCore processPath="a"/>`, func(t *testing.T, a *config.App) {
			if a.ErrorMode != config.ErrorModeDetailedLocalOnly {
				t.Errorf("ErrorMode = %q", a.ErrorMode)
			}
		}},
		{"other location ignored", `</system.webServer><location path="api"><system.webServer><aspNetCore processPath="b"/></system.webServer></location><system.webServer><aspNetCore processPath="a" xmlns:xdt="http://schemas.microsoft.com/XML-Document-Transform" xdt:Transform="SetAttributes"/>`, func(t *testing.T, a *config.App) {
			if a.ProcessPath != "a" {
				t.Errorf("ProcessPath = %q", a.ProcessPath)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := `<configuration><system.webServer>` + tt.inner + `</system.webServer></configuration>`
			a, err := decode(strings.NewReader(doc), "web.config", dir, testEnv)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, a)
		})
	}
}

func TestBadFiles(t *testing.T) {
	t.Parallel()
	const head = "<configuration>\n<system.webServer>\n" // aspNetCore starts on line 3
	const tail = "\n</system.webServer>\n</configuration>\n"
	tests := []struct {
		name, doc, want string
	}{
		{"malformed XML", head + `<aspNetCore processPath="a">` + tail, "web.config:4: malformed XML: element <aspNetCore> closed by </system.webServer>"},
		{"unclosed attribute", head + `<aspNetCore processPath="a/>` + tail, "web.config:"},
		{"empty file", "", "web.config:1: malformed XML: no root element"},
		{"wrong root", "<config/>", `web.config:1: <config>: root element is <config>`},
		{"text after root", "<configuration/>\nstray", "web.config:2: malformed XML: text outside the root element"},
		{"two roots", "<configuration/>\n<x/>", "web.config:2: malformed XML: more than one root element"},
		{"attribute twice", head + `<aspNetCore processPath="a" processPath="b"/>` + tail, `web.config:3: aspNetCore attribute "processPath": attribute given twice`},
		{"missing aspNetCore", head + tail, "no <aspNetCore> element"},
		{"missing processPath", head + `<aspNetCore arguments="x"/>` + tail, `web.config:3: aspNetCore attribute "processPath": required attribute is missing`},
		{"bad number", head + "<aspNetCore processPath=\"a\"\n startupTimeLimit=\"abc\"/>" + tail, `web.config:4: aspNetCore attribute "startupTimeLimit": "abc" is not a whole number of seconds (0–3600)`},
		{"negative number", head + `<aspNetCore processPath="a" shutdownTimeLimit="-1"/>` + tail, `web.config:3: aspNetCore attribute "shutdownTimeLimit": "-1" is not a whole number of seconds (0–600)`},
		{"out of range", head + "<aspNetCore processPath=\"a\"\n\n startupTimeLimit=\"4000\"/>" + tail, `web.config:5: aspNetCore attribute "startupTimeLimit": 4000 is out of range (0–3600 seconds)`},
		{"processes out of range", head + `<aspNetCore processPath="a" processesPerApplication="0"/>` + tail, `web.config:3: aspNetCore attribute "processesPerApplication": 0 is out of range (1–100)`},
		{"60-minute timespan", head + `<aspNetCore processPath="a" requestTimeout="00:60:00"/>` + tail, `web.config:3: aspNetCore attribute "requestTimeout": "00:60:00" is not a timeSpan [d.]hh:mm[:ss]: minutes must be 0–59`},
		{"60-second timespan", head + `<aspNetCore processPath="a" requestTimeout="00:00:60"/>` + tail, `seconds must be 0–59`},
		{"timespan too long", head + `<aspNetCore processPath="a" requestTimeout="361:00:00"/>` + tail, `"requestTimeout": 361:00:00 is out of range`},
		{"bad bool", head + `<aspNetCore processPath="a" stdoutLogEnabled="yes"/>` + tail, `web.config:3: aspNetCore attribute "stdoutLogEnabled": "yes" is not true or false`},
		{"unknown attribute", head + `<aspNetCore processPath="a" startuptimelimit="5"/>` + tail, `web.config:3: aspNetCore attribute "startuptimelimit": unknown attribute`},
		{"duplicate aspNetCore", head + `<aspNetCore processPath="a"/><aspNetCore processPath="b"/>` + tail, "second <aspNetCore> element (the first is on line 3)"},
		{"unknown hostingModel", head + `<aspNetCore processPath="a" hostingModel="sideways"/>` + tail, `web.config:3: aspNetCore attribute "hostingModel": unknown hosting model "sideways"`},
		{"unknown errorMode", head + "<aspNetCore processPath=\"a\"/>\n<httpErrors\n errorMode=\"Verbose\"/>" + tail, `web.config:5: httpErrors attribute "errorMode": unknown error mode "Verbose" (known: DetailedLocalOnly, Detailed, Custom)`},
		{"unknown httpErrors attribute", head + "<aspNetCore processPath=\"a\"/>\n<httpErrors errormode=\"Custom\"/>" + tail, `web.config:4: httpErrors attribute "errormode": unknown attribute`},
		{"empty env name", head + "<aspNetCore processPath=\"a\"><environmentVariables>\n<environmentVariable name=\"\" value=\"x\"/></environmentVariables></aspNetCore>" + tail, `web.config:4: environmentVariable attribute "name": must not be empty`},
		{"env value missing", head + `<aspNetCore processPath="a"><environmentVariables><environmentVariable name="X"/></environmentVariables></aspNetCore>` + tail, `environmentVariable attribute "value": required attribute is missing`},
		{"env listed twice", head + "<aspNetCore processPath=\"a\"><environmentVariables><environmentVariable name=\"X\" value=\"1\"/>\n<environmentVariable name=\"x\" value=\"2\"/></environmentVariables></aspNetCore>" + tail, `web.config:4: environmentVariable attribute "name": "x" is listed twice (first on line 3`},
		{"bad fixed port", head + "<aspNetCore processPath=\"a\"><environmentVariables>\n<environmentVariable name=\"ASPNETCORE_PORT\" value=\"80\"/></environmentVariables></aspNetCore>" + tail, `web.config:4: environmentVariable attribute "value": ASPNETCORE_PORT: fixed port "80" is not a whole number in 1025–48000`},
		{"fixed port shared", head + `<aspNetCore processPath="a" processesPerApplication="2"><environmentVariables><environmentVariable name="ASPNETCORE_PORT" value="5000"/></environmentVariables></aspNetCore>` + tail, `fixed port 5000 cannot be shared by processesPerApplication=2 processes`},
		{"bad handler duration", head + "<aspNetCore processPath=\"a\"><handlerSettings>\n<handlerSetting name=\"idleTimeout\" value=\"soon\"/></handlerSettings></aspNetCore>" + tail, `web.config:4: handlerSetting "idleTimeout": "soon" is not a duration`},
		{"bad handler size", head + `<aspNetCore processPath="a"><handlerSettings><handlerSetting name="stdoutLogMaxSize" value="10XB"/></handlerSettings></aspNetCore>` + tail, `handlerSetting "stdoutLogMaxSize": "10XB" is not a whole number of bytes`},
		{"bad handler bool", head + `<aspNetCore processPath="a"><handlerSettings><handlerSetting name="startAtBoot" value="1"/></handlerSettings></aspNetCore>` + tail, `handlerSetting "startAtBoot": "1" is not true or false`},
		{"misspelt handler setting", head + "<aspNetCore processPath=\"a\"><handlerSettings>\n<handlerSetting name=\"drainTimout\" value=\"5\"/></handlerSettings></aspNetCore>" + tail, `web.config:4: handlerSetting "drainTimout": unknown name (did you mean "drainTimeout"?)`},
		{"unknown handler setting", head + `<aspNetCore processPath="a"><handlerSettings><handlerSetting name="colour" value="blue"/></handlerSettings></aspNetCore>` + tail, `handlerSetting "colour": unknown name (see "handlerSettings" in docs/web-config.md)`},
		{"bad readiness probe", head + `<aspNetCore processPath="a"><handlerSettings><handlerSetting name="readinessProbe" value="healthz"/></handlerSettings></aspNetCore>` + tail, `web.config:3: handlerSetting "readinessProbe": "healthz" does not start with /`},
		{"bad protocol", head + `<aspNetCore processPath="a"><handlerSettings><handlerSetting name="protocol" value="h2"/></handlerSettings></aspNetCore>` + tail, `web.config:3: handlerSetting "protocol": "h2": want "http1" or "h2c"`},
		{"grpcWeb without h2c", head + `<aspNetCore processPath="a"><handlerSettings><handlerSetting name="protocol" value="http1"/><handlerSetting name="grpcWeb" value="true"/></handlerSettings></aspNetCore>` + tail, `handlerSetting "grpcWeb": needs protocol "h2c"`},
		{"unknown child", head + `<aspNetCore processPath="a"><environmentVariable name="X" value="1"/></aspNetCore>` + tail, `web.config:3: <environmentVariable>: unknown element in <aspNetCore>`},
		{"windows drive log path", head + `<aspNetCore processPath="a" stdoutLogFile="C:\logs\stdout"/>` + tail, `is a Windows drive path`},
		{"two problems", head + `<aspNetCore startupTimeLimit="9999"/>` + tail, "\nweb.config:3: aspNetCore attribute \"startupTimeLimit\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := decode(strings.NewReader(tt.doc), "web.config", "/srv/app", testEnv)
			if err == nil {
				t.Fatalf("no error; got %+v", a)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Errorf("error %T is not a *Error", err)
			}
		})
	}
}

func TestValidateErrorUnwraps(t *testing.T) {
	t.Parallel()
	_, err := decode(strings.NewReader(`<configuration><system.webServer><aspNetCore processPath="a" hostingModel="x"/></system.webServer></configuration>`), "w", "/a", nil)
	se, ok := errors.AsType[*config.SettingError](err)
	if !ok || se.Name != "hostingModel" {
		t.Fatalf("err = %v; want a *config.SettingError for hostingModel inside", err)
	}
}

func TestEncodings(t *testing.T) {
	t.Parallel()
	const doc = `<?xml version="1.0" encoding="%s"?>` + "\n" + `<configuration><system.webServer><aspNetCore processPath="dötnet"/></system.webServer></configuration>`
	utf16le := func(s string) []byte {
		b := []byte{0xFF, 0xFE}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	latin1 := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r))
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"utf-8 BOM", append([]byte{0xEF, 0xBB, 0xBF}, strings.Replace(doc, "%s", "utf-8", 1)...)},
		{"utf-16 BOM", utf16le(strings.Replace(doc, "%s", "utf-16", 1))},
		{"latin1", latin1(strings.Replace(doc, "%s", "iso-8859-1", 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := decode(bytes.NewReader(tt.data), "w", "/a", nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.ProcessPath != "dötnet" {
				t.Errorf("ProcessPath = %q", a.ProcessPath)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "web.config"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v; want os.ErrNotExist inside", err)
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.web.config")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<configuration><location path=""><system.webServer><aspNetCore processPath="a" requestTimeout="1.2:3"/></system.webServer></location></configuration>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decode(bytes.NewReader(b), "web.config", "/srv/app", testEnv)
		if err == nil {
			if a.ProcessPath == "" {
				t.Errorf("decoded an App without processPath")
			}
			if err := a.WriteSettings(new(bytes.Buffer)); err != nil {
				t.Error(err)
			}
		} else if _, ok := errors.AsType[*Error](err); !ok {
			t.Errorf("error %T is not a *Error: %v", err, err)
		}
	})
}
