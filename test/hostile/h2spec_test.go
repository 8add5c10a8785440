package hostile_test

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// h2specSiteYAML serves the app of TestProtocolCorpus over HTTP/2 on a TLS
// binding and over h2c (prior knowledge) on a cleartext one.
const h2specSiteYAML = `
shutdownTimeout: 5s
protocols: {h2c: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: $DIR}]
`

// h2specExpected lists the h2spec cases known to fail, per protocol.
const h2specExpected = "testdata/h2spec.expected"

// TestH2spec runs h2spec (github.com/summerwind/h2spec, the version
// .ci/run installs) against the real gatehouse binary serving a real app,
// over TLS (ALPN h2) and over h2c, and compares the cases that failed with
// testdata/h2spec.expected: a failure not listed there fails the test, and
// so does a listed case that passed, so the list stays true. Without
// h2spec the test is skipped, except in CI (CI set), where it fails.
func TestH2spec(t *testing.T) {
	t.Parallel()
	h2spec := findH2spec(t)
	expected, err := loadH2specExpected(h2specExpected)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := startProtocolGatehouse(t, h2specSiteYAML)
	targets := []struct {
		protocol string
		addr     string
		flags    []string
	}{
		{"tls", g.addr(t, "https"), []string{"-t", "-k"}},
		{"h2c", g.addr(t, "http"), nil},
	}
	for _, target := range targets {
		t.Run(target.protocol, func(t *testing.T) {
			t.Parallel()
			host, port, ok := strings.Cut(target.addr, ":")
			if !ok {
				t.Fatalf("address %q", target.addr)
			}
			report := filepath.Join(t.TempDir(), "h2spec.xml")
			// Bounds the whole run; -o bounds each case's wait for an
			// answer (h2spec's default, 2 s, is plenty for a loopback
			// peer and keeps a run within a minute).
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			args := append([]string{"-h", host, "-p", port, "-o", "2", "-j", report}, target.flags...)
			cmd := exec.CommandContext(ctx, h2spec, args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			cmd.WaitDelay = 5 * time.Second
			// h2spec exits 1 when a case failed: the report says which.
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) || ctx.Err() != nil {
				t.Fatalf("h2spec %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			cases, err := readH2specReport(report)
			if err != nil {
				t.Fatalf("%v\nh2spec output:\n%s", err, out)
			}
			failed, ran := 0, map[string]bool{}
			for _, c := range cases {
				want, listed := expected[c.id+" "+target.protocol]
				switch {
				case c.failed && !listed:
					t.Errorf("h2spec %s over %s failed: %s\n%s", c.id, target.protocol, c.desc, c.detail)
				case !c.failed && listed:
					t.Errorf("h2spec %s over %s passed: remove its line (%s) from %s", c.id, target.protocol, want, h2specExpected)
				}
				if c.failed {
					failed++
				}
				ran[c.id] = true
			}
			for key := range expected {
				if id, proto, _ := strings.Cut(key, " "); proto == target.protocol && !ran[id] {
					t.Errorf("%s lists %s over %s, which h2spec did not run", h2specExpected, id, proto)
				}
			}
			t.Logf("h2spec over %s: %d/%d passed", target.protocol, len(cases)-failed, len(cases))
			if t.Failed() {
				t.Logf("h2spec output:\n%s", out)
			}
		})
	}
}

// findH2spec returns the path of h2spec: on PATH, or in ~/go/bin where go
// install puts it. Without it the test is skipped, or fails in CI.
func findH2spec(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, "go", "bin", "h2spec")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	const why = "h2spec is not on PATH or in ~/go/bin (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible)"
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// loadH2specExpected reads the expected failures: lines "case-id protocol
// # reason", keyed "case-id protocol", with the reason as value. Blank
// lines and lines starting with # are comments; every case needs a reason.
func loadH2specExpected(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	expected := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields, reason, _ := strings.Cut(line, "#")
		f := strings.Fields(fields)
		reason = strings.TrimSpace(reason)
		if len(f) != 2 || !slices.Contains([]string{"tls", "h2c"}, f[1]) || reason == "" {
			return nil, fmt.Errorf("%s:%d: want \"case-id tls|h2c # reason\", got %q", name, n, line)
		}
		key := f[0] + " " + f[1]
		if _, dup := expected[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", name, n, key)
		}
		expected[key] = reason
	}
	return expected, sc.Err()
}

// h2specCase is one case of an h2spec run.
type h2specCase struct {
	id     string // as h2spec prints it: group ID and position, "http2/6.5.3/1"
	desc   string
	failed bool
	detail string // what h2spec expected and saw
}

// readH2specReport reads h2spec's JUnit report. A test case carries its
// group's ID (package) but not its position, which is its place in the
// group's suite, counted from 1, as h2spec numbers cases.
func readH2specReport(name string) ([]h2specCase, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("h2spec report: %w", err)
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Package   string `xml:"package,attr"`
				ClassName string `xml:"classname,attr"`
				Failure   *struct {
					Content string `xml:",innerxml"`
				} `xml:"failure"`
				Error *struct {
					Content string `xml:",innerxml"`
				} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &report); err != nil {
		return nil, fmt.Errorf("h2spec report %s: %w", name, err)
	}
	var cases []h2specCase
	for _, s := range report.Suites {
		for i, tc := range s.Cases {
			c := h2specCase{id: fmt.Sprintf("%s/%d", tc.Package, i+1), desc: tc.ClassName}
			switch {
			case tc.Failure != nil:
				c.failed, c.detail = true, tc.Failure.Content
			case tc.Error != nil:
				c.failed, c.detail = true, tc.Error.Content
			case tc.Skipped != nil:
				return nil, fmt.Errorf("h2spec skipped %s (%s)", c.id, c.desc)
			}
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("h2spec report %s has no cases", name)
	}
	return cases, nil
}
