package config

import (
	"reflect"
	"slices"
	"testing"
)

func TestBuildEnv(t *testing.T) {
	t.Parallel()
	const iis = "Microsoft.AspNetCore.Server.IISIntegration"
	module := func(extra ...string) []string {
		return append(extra,
			"ASPNETCORE_APPL_PATH=/",
			"ASPNETCORE_IIS_HTTPAUTH=anonymous;",
			"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES="+iis,
			"ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=true",
		)
	}
	tests := []struct {
		name      string
		base      []string
		env       []EnvVar
		applPath  string
		httpsPort int
		protocol  string
		want      []string
	}{
		{
			name: "empty",
			want: module(),
		},
		{
			name: "inherited kept in order",
			base: []string{"PATH=/bin", "HOME=/root"},
			want: module("PATH=/bin", "HOME=/root"),
		},
		{
			name: "web.config replaces in place, case-insensitively",
			base: []string{"Path=/bin", "HOME=/root", "path=/usr/bin"},
			env:  []EnvVar{{"PATH", "/opt/bin"}, {"NEW", "x"}},
			want: module("PATH=/opt/bin", "HOME=/root", "NEW=x"),
		},
		{
			name: "prefer environment variables",
			base: []string{"ANCM_PREFER_ENVIRONMENT_VARIABLES=true", "A=inherited"},
			env:  []EnvVar{{"a", "config"}, {"B", "config"}},
			want: module("ANCM_PREFER_ENVIRONMENT_VARIABLES=true", "A=inherited", "B=config"),
		},
		{
			name: "prefer with 1",
			base: []string{"ANCM_PREFER_ENVIRONMENT_VARIABLES=1", "A=inherited"},
			env:  []EnvVar{{"A", "config"}},
			want: module("ANCM_PREFER_ENVIRONMENT_VARIABLES=1", "A=inherited"),
		},
		{
			name: "prefer off with other value",
			base: []string{"ANCM_PREFER_ENVIRONMENT_VARIABLES=yes", "A=inherited"},
			env:  []EnvVar{{"A", "config"}},
			want: module("ANCM_PREFER_ENVIRONMENT_VARIABLES=yes", "A=config"),
		},
		{
			name: "inherited port and token dropped",
			base: []string{"ASPNETCORE_PORT=5000", "aspnetcore_token=abc", "PORT=80"},
			want: module("PORT=80"),
		},
		{
			name: "web.config port and token kept",
			base: []string{"ASPNETCORE_PORT=5000"},
			env:  []EnvVar{{"ASPNETCORE_PORT", "6000"}, {"ASPNETCORE_TOKEN", "t"}},
			want: module("ASPNETCORE_PORT=6000", "ASPNETCORE_TOKEN=t"),
		},
		{
			name: "empty web.config port dropped",
			env:  []EnvVar{{"ASPNETCORE_PORT", ""}},
			want: module(),
		},
		{
			name:     "module variables overwrite",
			base:     []string{"ASPNETCORE_APPL_PATH=/x", "ASPNETCORE_IIS_HTTPAUTH=windows;"},
			env:      []EnvVar{{"ASPNETCORE_IIS_HTTPAUTH", "ignoredValue"}, {"ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED", "false"}},
			applPath: "/myapp",
			want: []string{
				"ASPNETCORE_APPL_PATH=/myapp",
				"ASPNETCORE_IIS_HTTPAUTH=anonymous;",
				"ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=true",
				"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=" + iis,
			},
		},
		{
			name: "hosting startup appended to inherited",
			base: []string{"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=Foo"},
			want: []string{
				"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=Foo;" + iis,
				"ASPNETCORE_APPL_PATH=/",
				"ASPNETCORE_IIS_HTTPAUTH=anonymous;",
				"ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=true",
			},
		},
		{
			name: "hosting startup not listed twice",
			base: []string{"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=Foo; " + iis},
			want: []string{
				"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=Foo; " + iis,
				"ASPNETCORE_APPL_PATH=/",
				"ASPNETCORE_IIS_HTTPAUTH=anonymous;",
				"ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=true",
			},
		},
		{
			name: "hosting startup from web.config verbatim",
			base: []string{"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=Foo"},
			env:  []EnvVar{{"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES", "Bar"}},
			want: []string{
				"ASPNETCORE_HOSTINGSTARTUPASSEMBLIES=Bar",
				"ASPNETCORE_APPL_PATH=/",
				"ASPNETCORE_IIS_HTTPAUTH=anonymous;",
				"ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED=true",
			},
		},
		{
			name:      "https port",
			httpsPort: 8443,
			want:      append(module(), "ASPNETCORE_ANCM_HTTPS_PORT=8443"),
		},
		{
			name:      "https port from web.config wins",
			env:       []EnvVar{{"ASPNETCORE_ANCM_HTTPS_PORT", "443"}},
			httpsPort: 8443,
			want:      module("ASPNETCORE_ANCM_HTTPS_PORT=443"),
		},
		{
			name: "no https port keeps inherited",
			base: []string{"ASPNETCORE_ANCM_HTTPS_PORT=1"},
			want: module("ASPNETCORE_ANCM_HTTPS_PORT=1"),
		},
		{
			name:     "h2c tells Kestrel to serve HTTP/2",
			protocol: ProtocolH2C,
			want:     append(module(), "Kestrel__EndpointDefaults__Protocols=Http2"),
		},
		{
			name:     "h2c leaves web.config's Kestrel protocols",
			protocol: ProtocolH2C,
			env:      []EnvVar{{"KESTREL__ENDPOINTDEFAULTS__PROTOCOLS", "Http1AndHttp2"}},
			want:     module("KESTREL__ENDPOINTDEFAULTS__PROTOCOLS=Http1AndHttp2"),
		},
		{
			name:     "http1 sets no Kestrel protocols",
			protocol: ProtocolHTTP1,
			want:     module(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := slices.Clone(tt.base)
			app := Default("/srv/app")
			app.Env = tt.env
			app.Protocol = tt.protocol
			got := BuildEnv(base, app, tt.applPath, tt.httpsPort)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("BuildEnv =\n%q\nwant\n%q", got, tt.want)
			}
			if !reflect.DeepEqual(base, tt.base) {
				t.Errorf("base modified: %q", base)
			}
		})
	}
}
