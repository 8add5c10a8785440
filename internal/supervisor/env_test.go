package supervisor

import (
	"slices"
	"testing"
)

func TestChildEnvTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		base  []string
		extra []string
		want  []string
	}{
		{"empty", nil, nil,
			[]string{"ASPNETCORE_PORT=5000", "HTTP_PLATFORM_PORT=5000", "PORT=5000", "ASPNETCORE_TOKEN=tok"}},
		{"replaces any case", []string{"A=1", "port=1", "Aspnetcore_Token=x", "ASPNETCORE_PORT=", "LISTEN_PID=9"}, nil,
			[]string{"A=1", "ASPNETCORE_PORT=5000", "HTTP_PLATFORM_PORT=5000", "PORT=5000", "ASPNETCORE_TOKEN=tok"}},
		{"extra last", []string{"B=2"}, []string{"NOTIFY_SOCKET=/s"},
			[]string{"B=2", "ASPNETCORE_PORT=5000", "HTTP_PLATFORM_PORT=5000", "PORT=5000", "ASPNETCORE_TOKEN=tok", "NOTIFY_SOCKET=/s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := childEnv(tt.base, 5000, "tok", tt.extra); !slices.Equal(got, tt.want) {
				t.Errorf("childEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPortFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		port    int
		fixed   bool
		wantErr bool
	}{
		{"unset", []string{"X=1"}, 0, false, false},
		{"empty", []string{"ASPNETCORE_PORT="}, 0, false, false},
		{"valid", []string{"aspnetcore_port=5001"}, 5001, true, false},
		{"low", []string{"ASPNETCORE_PORT=1024"}, 0, false, true},
		{"high", []string{"ASPNETCORE_PORT=48001"}, 0, false, true},
		{"noninteger", []string{"ASPNETCORE_PORT=abc"}, 0, false, true},
		{"edges", []string{"ASPNETCORE_PORT=48000"}, 48000, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, fixed, err := portFromEnv(tt.env)
			if port != tt.port || fixed != tt.fixed || (err != nil) != tt.wantErr {
				t.Errorf("portFromEnv = %d, %v, %v", port, fixed, err)
			}
		})
	}
}

func TestNewTokenUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		tok, err := newToken()
		if err != nil || !tokenRE.MatchString(tok) || seen[tok] {
			t.Fatalf("token %q err %v", tok, err)
		}
		seen[tok] = true
	}
}

func TestShutdownURL(t *testing.T) {
	t.Parallel()
	for applPath, want := range map[string]string{
		"":      "http://127.0.0.1:1/iisintegration",
		"/":     "http://127.0.0.1:1/iisintegration",
		"/app":  "http://127.0.0.1:1/app/iisintegration",
		"/a/b/": "http://127.0.0.1:1/a/b/iisintegration",
	} {
		if got := shutdownURL("127.0.0.1:1", applPath); got != want {
			t.Errorf("shutdownURL(%q) = %q, want %q", applPath, got, want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	if got := commandLine("/usr/bin/dotnet", []string{"My App.dll", "--x"}); got != `/usr/bin/dotnet "My App.dll" --x` {
		t.Errorf("commandLine = %s", got)
	}
}

func TestAppPortsOutsideEphemeral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		eph  portRange
		want []portRange
	}{
		{portRange{32768, 60999}, []portRange{{10000, 32767}}}, // Linux's default
		{portRange{1024, 65535}, []portRange{{10000, 48000}}},  // covers all: ANCM's range, and retries
		{portRange{20000, 30000}, []portRange{{10000, 19999}, {30001, 48000}}},
		{portRange{49152, 65535}, []portRange{{10000, 48000}}}, // IANA's: no overlap
		{portRange{1024, 10000}, []portRange{{10001, 48000}}},
	}
	for _, tt := range tests {
		if got := appPorts(tt.eph); !slices.Equal(got, tt.want) {
			t.Errorf("appPorts(%v) = %v, want %v", tt.eph, got, tt.want)
		}
	}
	for in, want := range map[string]portRange{
		"32768\t60999\n": {32768, 60999},
		"1024 65535":     {1024, 65535},
		"":               defaultEphemeral,
		"5 x":            defaultEphemeral,
		"60000 1000":     defaultEphemeral,
	} {
		if got := parsePortRange(in); got != want {
			t.Errorf("parsePortRange(%q) = %v, want %v", in, got, want)
		}
	}
}

// Random ports stay out of this machine's ephemeral range, and once the
// random tries hit taken ports the scan still finds the free one.
func TestPickPortAvoidsEphemeral(t *testing.T) {
	t.Parallel()
	eph := ephemeralPorts()
	ranges := appPorts(eph)
	// Whether 10000–48000 has room outside the ephemeral range here.
	room := eph.lo > minRandomPort || eph.hi < maxPort
	bad := func(port int) bool {
		return port < minRandomPort || port > maxPort || (room && port >= eph.lo && port <= eph.hi)
	}
	for range 1000 {
		port, err := pickPortIn(ranges, func(int) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if bad(port) {
			t.Fatalf("port %d: outside 10000–48000 or inside the ephemeral range %v", port, eph)
		}
	}
	only := 12345
	port, err := pickPortIn([]portRange{{12000, 12999}}, func(p int) bool { return p == only })
	if err != nil || port != only {
		t.Errorf("pickPortIn = %d, %v; want the one free port %d", port, err, only)
	}
	if _, err := pickPortIn([]portRange{{12000, 12009}}, func(int) bool { return false }); err == nil {
		t.Error("pickPortIn found a port where none is free")
	}
	port, err = pickPort()
	if err != nil || bad(port) {
		t.Errorf("pickPort = %d, %v (ephemeral %v)", port, err, eph)
	}
}
