package iis

import (
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestIPSecurity(t *testing.T) {
	t.Parallel()
	rules := []config.IPRule{
		{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Allowed: false},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Allowed: true},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), Allowed: true},
	}
	tests := []struct {
		name      string
		unlisted  bool
		action    string
		ip        string
		wantCode  string // "" passes
		wantAbort bool
	}{
		{"listed allowed", false, "", "10.1.2.3", "", false},
		{"first match wins", false, "", "10.9.1.1", "403.6", false},
		{"unlisted denied", false, "", "192.0.2.1", "403.6", false},
		{"unlisted allowed", true, "", "192.0.2.1", "", false},
		{"ipv6 allowed", false, "", "2001:db8::5", "", false},
		{"ipv4 rule does not match ipv6", false, "", "::1", "403.6", false},
		{"no address", false, "", "", "403.6", false},
		{"unauthorized", false, "Unauthorized", "192.0.2.1", "401.503", false},
		{"not found", false, "NotFound", "192.0.2.1", "404.503", false},
		{"abort", false, "AbortRequest", "192.0.2.1", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewIPSecurity(&config.IPSecurity{AllowUnlisted: tt.unlisted, DenyAction: tt.action, Rules: rules})
			r := &pipeline.Request{}
			if tt.ip != "" {
				r.ClientIP = netip.MustParseAddr(tt.ip)
			}
			res := s.Serve(r)
			switch {
			case tt.wantAbort:
				if res == nil || !res.Abort {
					t.Errorf("result %+v, want an abort", res)
				}
			case tt.wantCode == "":
				if res != nil {
					t.Errorf("refused with %s", res.Code())
				}
			case res == nil:
				t.Errorf("passed, want %s", tt.wantCode)
			case res.Code() != tt.wantCode:
				t.Errorf("code %s, want %s", res.Code(), tt.wantCode)
			}
		})
	}
	if NewIPSecurity(&config.IPSecurity{AllowUnlisted: true, Rules: []config.IPRule{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Allowed: true}}}) != nil {
		t.Error("a section that denies nothing built a stage")
	}
}
