package proxy

import "testing"

func TestUnderscoreSpoof(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"X_Forwarded_For":     true,
		"x_forwarded_for":     true,
		"X-Forwarded_For":     true,
		"X_FORWARDED_PROTO":   true,
		"X_Forwarded_Host":    true,
		"MS_ASPNETCORE_TOKEN": true,
		"Ms_Aspnetcore-User":  true,
		"MS_ASPNETCORE":       true,
		"Transfer_Encoding":   true,
		"Content_Length":      true,
		"Proxy_Authorization": true,
		"Keep_Alive":          true,
		"X_Real_IP":           true,
		"X-Forwarded-For":     false, // handled by the proxy's own rules
		"Ms-Aspnetcore-Token": false, // same
		"X_Custom_Thing":      false,
		"api_key":             false,
		"Accept":              false,
		"":                    false,
		"X_Forwarded_For_":    false,
	} {
		if got := underscoreSpoof(name); got != want {
			t.Errorf("underscoreSpoof(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestUnderscoreSpoofNoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = underscoreSpoof("X_Forwarded_For") }); n != 0 {
		t.Errorf("underscoreSpoof allocates %v times", n)
	}
}
