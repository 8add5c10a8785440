package iis

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestWithServerDefaults(t *testing.T) {
	t.Parallel()
	// No section: the server's lists only, nothing else judged.
	got := WithServerDefaults(nil)
	if len(got.FileExtensions.Rules) != len(serverExtensions) || !slices.Equal(got.HiddenSegments, serverHidden) {
		t.Fatalf("no section: %d extensions, hidden %v", len(got.FileExtensions.Rules), got.HiddenSegments)
	}
	if !got.AllowDoubleEscaping || !got.AllowHighBitCharacters || !got.FileExtensions.AllowUnlisted || !got.Verbs.AllowUnlisted {
		t.Errorf("no section: %+v judges more than the lists", got)
	}

	own := &config.RequestFiltering{
		FileExtensions: config.FileExtensions{AllowUnlisted: true, Rules: []config.ExtensionRule{{Extension: ".config", Allowed: true}, {Extension: ".bak"}}},
		HiddenSegments: []string{"app_data", "secrets"},
		ServerEdits:    config.ServerEdits{RemovedExtensions: []string{".CS"}, RemovedHidden: []string{"Bin"}},
	}
	got = WithServerDefaults(own)
	hidden, denied, allowed := Lists(got)
	if slices.Contains(denied, ".cs") || slices.Contains(denied, ".config") || !slices.Contains(denied, ".mdf") || denied[len(denied)-1] != ".bak" {
		t.Errorf("denied %v: want the server's without .cs and .config, then the app's .bak", denied)
	}
	if !slices.Equal(allowed, []string{".config"}) {
		t.Errorf("allowed %v, want the app's .config", allowed)
	}
	if want := []string{"web.config", "App_code", "App_GlobalResources", "App_LocalResources", "App_WebReferences", "App_Browsers", "app_data", "secrets"}; !slices.Equal(hidden, want) {
		t.Errorf("hidden %v, want %v", hidden, want)
	}
	if len(own.FileExtensions.Rules) != 2 || len(own.HiddenSegments) != 2 {
		t.Error("WithServerDefaults changed its argument")
	}

	cleared := WithServerDefaults(&config.RequestFiltering{ServerEdits: config.ServerEdits{ClearExtensions: true, ClearHidden: true}})
	if len(cleared.FileExtensions.Rules)+len(cleared.HiddenSegments) != 0 {
		t.Errorf("<clear/> kept %v %v", cleared.FileExtensions.Rules, cleared.HiddenSegments)
	}
}

// The baseline every app has costs no allocation on a request it passes.
func TestServerDefaultsAllocs(t *testing.T) {
	s := NewRequestFiltering(WithServerDefaults(nil))
	r := &pipeline.Request{Method: "GET", Path: "/Content/Site.Min.CSS", AppPath: "/"}
	if n := testing.AllocsPerRun(100, func() { s.Serve(r) }); n != 0 {
		t.Errorf("Serve allocates %v times", n)
	}
	for _, p := range []string{"/BIN/x", "/App_Data/a", "/x.CONFIG", "/a/web.config", "/x.SdmDocument"} {
		r.Path = p
		if s.Serve(r) == nil {
			t.Errorf("%s passed", p)
		}
	}
}
