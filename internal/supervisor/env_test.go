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
