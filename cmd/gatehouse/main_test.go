package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		listen     string
		positional []string
		rest       []string
		wantErr    bool
	}{
		{"flags first", []string{"--listen", ":80", "dir"}, ":80", []string{"dir"}, nil, false},
		{"flags after the folder", []string{"dir", "--listen", ":80"}, ":80", []string{"dir"}, nil, false},
		{"command after --", []string{"--listen", ":81", "--", "node", "-x", "--listen", "y"}, ":81", nil, []string{"node", "-x", "--listen", "y"}, false},
		{"positional then --", []string{"a", "--", "b", "-c"}, "", []string{"a"}, []string{"b", "-c"}, false},
		{"unknown flag", []string{"--bogus"}, "", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			listen := fs.String("listen", "", "")
			pos, rest, err := parseArgs(fs, tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if *listen != tc.listen || !slices.Equal(pos, tc.positional) || !slices.Equal(rest, tc.rest) {
				t.Errorf("listen %q positional %q rest %q; want %q %q %q", *listen, pos, rest, tc.listen, tc.positional, tc.rest)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"help"}, exitOK, "gatehouse serve"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"serve", "a", "b"}, exitUsage, "one app folder"},
		{[]string{"serve", "--log-format", "xml", "."}, exitUsage, "--log-format"},
		{[]string{"run", "--listen", ":0"}, exitUsage, "needs a command"},
		{[]string{"reload", "extra"}, exitUsage, "--pid-file"},
		{[]string{"reload", "--admin", "/nonexistent/gatehouse.sock"}, exitFailed, "gatehouse is not running"},
		{[]string{"check"}, exitUsage, "one folder or file"},
	} {
		var out bytes.Buffer
		code := run(context.Background(), tc.args, &out, &out)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("gatehouse %q: exit %d, output %q; want %d containing %q", tc.args, code, out.String(), tc.code, tc.out)
		}
	}
}

func TestDurationFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"00:02:00": "2m0s", "90s": "1m30s", "5": "5s"} {
		var d time.Duration
		if err := (durationFlag{&d}).Set(in); err != nil || d.String() != want {
			t.Errorf("Set(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	var d time.Duration
	if err := (durationFlag{&d}).Set("soon"); err == nil {
		t.Errorf("Set(soon) succeeded")
	}
}
